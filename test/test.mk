# Reliability targets, included from the Makefile with "-include test/test.mk".
#
#   make fuzz         every fuzz target in the module for FUZZTIME each,
#                     starting from the corpora committed under testdata/fuzz
#   make fuzz-ci      the same, briefly (the committed corpora also run as
#                     plain tests in "make test")
#   make bench-table  the benchmark table of BENCHMARKS.md, measured now

GO       ?= go
FUZZTIME ?= 20s
# Minimizing a new input re-runs it many times; over a live socket that is
# slow, so cap it rather than let it eat the fuzzing time.
FUZZMINIMIZETIME ?= 10s

.PHONY: fuzz fuzz-ci bench-table

# Targets are found by name, so fuzzers added to any package join in.
fuzz:
	@set -e; \
	for dir in $$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v '^./.codex/' | xargs -n1 dirname | sort -u); do \
	  for name in $$(grep -h '^func Fuzz' $$dir/*_test.go | sed 's/^func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "== $$dir $$name ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$dir; \
	  done; \
	done

fuzz-ci:
	$(MAKE) fuzz FUZZTIME=3s FUZZMINIMIZETIME=2s

bench-table:
	$(GO) run ./test/bench
