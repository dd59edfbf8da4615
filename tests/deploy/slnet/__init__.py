"""Test harness for deployments: the real mosquitto from deploy/ configs, network namespaces as
separate hosts, and numbered QoS 1 clients that count lost and doubled messages."""
