# Reliability targets, included from the Makefile with "-include test/test.mk".
#
#   make fuzz         every fuzz target in the module for FUZZTIME each,
#                     starting from the corpora committed under testdata/fuzz
#   make fuzz-ci      the same, briefly: a quick look for new inputs
#   make flaky        the timing-sensitive packages FLAKY_COUNT times over,
#                     with the race detector (BUSY=1: every core kept busy)
#   make bench-table  the benchmark table of BENCHMARKS.md, measured now
#   make bench-gate   what "attestd gate" adds behind nginx (BENCHMARKS.md)
#
# Fuzzing is not part of "make test" (CI). CI runs every committed corpus
# deterministically: plain "go test" runs each fuzz target on its seeds and
# on every file under testdata/fuzz, so a known crasher fails every run.
# Exploring new random inputs inside the one CI run that decides a landing
# would make landing a lottery: the inputs differ per run, and on a loaded
# machine a fuzz worker that is slow or killed fails the step ("fuzzing
# process hung or terminated unexpectedly") with no bug behind it. So
# exploration is "make fuzz", run by hand or on a schedule; a crasher it
# finds lands in testdata/fuzz/FuzzX/, and is committed with its fix, after
# which CI runs it for good.

GO       ?= go
FUZZTIME ?= 20s
# Minimizing a new input re-runs it many times; over a live socket that is
# slow, so cap it rather than let it eat the fuzzing time.
FUZZMINIMIZETIME ?= 10s

# The packages whose tests start processes, sockets or timers: where a
# test can pass alone and fail once in twenty, or on a busy machine.
FLAKY_PKGS  ?= ./test/reliability ./bridge/stdio ./cmd/attestd ./internal/daemon ./internal/diag ./internal/probe ./internal/logsetup ./bridge/server ./bridge/client ./bridge/pool ./bridge/socket ./bridge/provider ./bridge/provider/appattest ./internal/appattestsim ./verify/redisreplay ./verify/redisreplay/redistest ./internal/proxytest ./internal/gate ./verify ./verify/appattest/appattestredis ./verify/appattest/registration ./internal/appattestcli ./packaging/sign
FLAKY_COUNT ?= 20
FLAKY_RUN   ?= .
BUSY        ?= 0

.PHONY: fuzz fuzz-ci flaky bench-table bench-gate

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

# flaky runs FLAKY_PKGS FLAKY_COUNT times under the race detector; before
# committing a test that starts processes, sockets or timers, run e.g.
#   make flaky FLAKY_PKGS=./bridge/socket FLAKY_RUN='TestNewThing' BUSY=1
# BUSY=1 runs one spinning shell loop per core meanwhile (stopped on exit).
flaky: codex redis-server nginx caddy
	@set -e; hogs=""; \
	if [ "$(BUSY)" = 1 ]; then \
	  for i in $$(seq $$(getconf _NPROCESSORS_ONLN)); do (while :; do :; done) & hogs="$$hogs $$!"; done; \
	  trap 'kill $$hogs 2>/dev/null' EXIT INT TERM; \
	  echo "== $$(getconf _NPROCESSORS_ONLN) cores kept busy"; \
	fi; \
	CODEX_BIN=$(abspath $(CODEX_BIN)) $(GO) test -race -count=$(FLAKY_COUNT) -run '$(FLAKY_RUN)' -timeout 90m $(FLAKY_PKGS)

bench-table:
	$(GO) run ./test/bench

bench-gate: nginx
	$(GO) run ./test/gatebench
