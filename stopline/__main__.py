from stopline.cli import main

raise SystemExit(main())
