"""Session fixture that runs real Keystone + Glance on 127.0.0.1 (written with the openstack plugin)."""
