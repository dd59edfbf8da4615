from stopline.services.violation_desk.plates import deletion_keys, normalise_plate, relation


def test_normalise_keeps_letters_and_digits_upper_case():
    assert normalise_plate(" ab-123 cd ") == "AB123CD"
    assert normalise_plate("ÄB·12") == "AB12"
    assert normalise_plate("<script>") == "SCRIPT"


def test_relation_tells_confusion_from_edit():
    assert relation("AB123CD", "AB123CD") == "exact"
    assert relation("AB123C0", "AB123CO") == "confusion"  # 0 / O
    assert relation("8B123", "BB123") == "confusion"  # 8 / B
    assert relation("AB123CD", "AB124CD") == "edit"  # 3 / 4 is not an OCR confusion
    assert relation("AB123CD", "AB123C") == "edit"  # deletion
    assert relation("AB123CD", "XAB123CD") == "edit"  # insertion
    assert relation("AB123CD", "AB12CD3") is None
    assert relation("AB123CD", "ZZ123CD") is None


def test_plates_one_edit_apart_share_a_deletion_key():
    for a, b in [("AB123CD", "AB124CD"), ("AB123CD", "AB123C"), ("AB123CD", "XAB123CD")]:
        assert deletion_keys(a) & deletion_keys(b)


def test_clone_check_compares_class_and_colour_leniently():
    from stopline.services.violation_desk.lookup import clone_check
    from stopline.services.violation_desk.models import Vehicle

    van = Vehicle(vehicle_class="van", colour="grey")
    assert clone_check(van, "truck", "gray") is None  # detectors call vans trucks or cars
    assert clone_check(van, "car", None) is None
    assert "class" in clone_check(van, "motorcycle", "grey")
    assert clone_check(van, "motion", "grey") is None  # the edge's safety net names no class
    assert "colour" in clone_check(van, "car", "red")
    assert clone_check(None, "car", "red") is None
