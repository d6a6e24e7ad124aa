# The two commands of the README. Both set up what is missing first (Debian 12, as root).
.PHONY: serve test lint bench

# Run the service on its embedded defaults (port 8075, SQLite and image storage under
# /var/lib/imagefactory, in-process build workers), in development mode on loopback:
# plain HTTP and no OAuth. See docs/operators.md for TLS, OAuth clients and a config file.
serve:
	scripts/bootstrap.sh
	.venv/bin/imagefactory serve --address 127.0.0.1 --no-ssl --no-oauth

# Run the whole test suite, real builds and real local cloud services included, on one
# pytest-xdist worker per core; tests that share an expensive session fixture stay on one
# worker (the root conftest.py). `.venv/bin/pytest` alone runs it serially.
test:
	scripts/bootstrap.sh test
	tests/services/openstack_support/install.sh
	tests/services/vsphere_support/build.sh
	.venv/bin/pytest --numprocesses auto --dist loadscope --no-loadscope-reorder

lint:
	.venv/bin/ruff check .

BENCHMARKS = base_build image_size push_ec2 target_convert push_openstack push_vsphere \
	push_rhevm api_load first_boot cluster

# Every benchmark, each with the machine's load average (1, 5, 15 min) before it: figures from
# a loaded machine are inflated and noisy (docs/performance.md says how to read them).
bench:
	@for name in $(BENCHMARKS); do \
		echo "== bench/$$name (load average $$(cut -d' ' -f1-3 /proc/loadavg))"; \
		.venv/bin/python bench/$$name || exit 1; \
	done; echo "== load average at the end: $$(cut -d' ' -f1-3 /proc/loadavg)"
