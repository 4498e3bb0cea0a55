# Sluice — the two commands (see README.md):
#   make demo   install what is missing, build (Release), run the word-count demo
#   make test   install what is missing, build with ASan+UBSan, run every test
# and:
#   make bench  Release build, word-count benchmark against a bare C loop

DEBS := build-essential cmake pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler \
        librocksdb-dev librdkafka-dev libyaml-dev nettle-dev check kcat gawk python3 coreutils strace
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
JOBS := $(shell nproc 2>/dev/null || echo 2)
RELEASE := build/release
ASAN := build/asan

.PHONY: all deps release demo test bench format clean

all: release

# Installs the Debian packages that are not installed yet (idempotent).
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "== installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "== Debian packages: all present"; fi

release: deps
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(RELEASE) -j $(JOBS)

demo: release
	@mkdir -p build/demo
	$(RELEASE)/sluice run jobs/wordcount.yaml --parallelism 2 --workers 2 \
	  --param input=jobs/data/sluice-gates.txt --param output=build/demo/wordcount.csv
	@echo
	@echo "== top 15 words of jobs/data/sluice-gates.txt (build/demo/wordcount.csv):"
	@tail -n +2 build/demo/wordcount.csv | sort -t, -k2,2nr -k1,1 | head -n 15 | \
	  awk -F, '{ printf "  %-16s %6d\n", $$1, $$2 }'

# The Release tree is built too (not tested): optimised builds raise warnings
# of their own, and `make demo` / `make bench` must keep building.
test: deps
	cmake -S . -B $(ASAN) -DCMAKE_BUILD_TYPE=Debug -DSLUICE_SANITIZE=ON >/dev/null
	cmake --build $(ASAN) -j $(JOBS)
	cmake -S . -B $(RELEASE) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(RELEASE) -j $(JOBS)
	cd $(ASAN) && ctest --output-on-failure -j $(JOBS) --timeout 900

bench: release
	bash bench/wordcount.sh $(RELEASE)

# Release build, Nexmark q0-q2: sluice P=1/P=2 against a one-thread C-loop
# ceiling, medians of 3 runs, into the "Nexmark" section of docs/benchmarks.md
.PHONY: bench-nexmark
bench-nexmark: release
	bash bench/nexmark.sh $(RELEASE)

# Release build: the Yahoo Streaming Benchmark (jobs/ysb.yaml) at P=1, P=2
# and over two worker processes against bench/ysb_ref's one-thread ceiling,
# medians of 3 runs, printed (docs/ysb.md "Numbers" quotes it)
.PHONY: bench-ysb
bench-ysb: release
	bash bench/ysb.sh $(RELEASE)

# Release build: checkpoint cost (off vs every 1 s), checkpoint size and
# duration, recovery after kill -9 of a worker, into the "Checkpoints"
# section of docs/benchmarks.md
# Release build: p50/p99 event-to-result latency of q1, q5, q7 and YSB at a
# fixed rate, into the "Latency" section of docs/benchmarks.md
.PHONY: bench-latency
bench-latency: release
	bash bench/latency.sh $(RELEASE)

.PHONY: bench-checkpoint
bench-checkpoint: release
	bash bench/checkpoint.sh $(RELEASE)

# Release build: raw librdkafka produce/consume against Sluice's Kafka source
# -> map -> Kafka sink (at-least-once, exactly-once) on the dev broker,
# medians of 3, into the "Kafka" section of docs/benchmarks.md
.PHONY: bench-kafka
bench-kafka: release
	bash bench/kafka.sh $(RELEASE)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build
