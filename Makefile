# The two commands of the README. Both set up what is missing first (Debian 12, as root).
.PHONY: serve test lint bench

# Run the service on its embedded defaults (port 8075, SQLite and image storage under
# /var/lib/imagefactory, in-process build workers), in development mode on loopback:
# plain HTTP and no OAuth. See docs/operators.md for TLS, OAuth clients and a config file.
serve:
	scripts/bootstrap.sh
	.venv/bin/imagefactory serve --address 127.0.0.1 --no-ssl --no-oauth

# Run the whole test suite, real builds and real local cloud services included, one pytest-xdist
# worker per core (the root conftest.py groups the tests that share a session's fixtures).
test:
	scripts/bootstrap.sh test
	tests/services/openstack_support/install.sh
	tests/services/vsphere_support/build.sh
	.venv/bin/pytest --numprocesses auto --dist loadscope --no-loadscope-reorder

lint:
	.venv/bin/ruff check .

bench:
	.venv/bin/python bench/base_build
	.venv/bin/python bench/image_size
	.venv/bin/python bench/push_ec2
	.venv/bin/python bench/target_convert
	.venv/bin/python bench/push_openstack
	.venv/bin/python bench/push_vsphere
	.venv/bin/python bench/push_rhevm
	.venv/bin/python bench/api_load
	.venv/bin/python bench/first_boot
	.venv/bin/python bench/cluster
