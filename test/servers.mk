# The real servers the tests start, included from the Makefile with
# "include test/servers.mk". Each target installs its server when missing:
#
#   make redis-server  redis-server and redis-cli, for the replay-store tests
#                      (one server on a private socket or a loopback port, and
#                      a three-node Redis Cluster made with redis-cli --cluster)
#   make nginx         nginx, for the gate's auth_request tests
#   make caddy         caddy, for the gate's forward_auth tests
#
# On Linux they come from Debian's packages through apt-get (after an
# apt-get update when the package lists are stale; sudo only when not
# root). Each package also enables and starts its own system service
# (redis on port 6379, nginx on 80, caddy on 80, 443 and 2019) wherever
# services may start, and again at every boot. The tests run their own
# processes on free loopback ports, so the service a target installs is
# stopped and disabled again: "make test" leaves nothing running behind it.
# On a Mac (uname Darwin) they come from Homebrew, which starts no service.

.PHONY: redis-server nginx caddy
test: redis-server nginx caddy

redis-server:
	$(call install-server,redis-server redis-cli,redis-server redis-tools,redis-server,redis,the replay-store tests)

nginx:
	$(call install-server,nginx,nginx,nginx,nginx,the gate's nginx tests)

caddy:
	$(call install-server,caddy,caddy,caddy,caddy,the gate's Caddy tests)

# $(call install-server,PROGRAMS,DEBIAN PACKAGES,DEBIAN SERVICES,BREW FORMULAE,WHAT FOR)
# installs the packages unless every program is on PATH (or in /usr/sbin,
# which is not on a normal user's PATH on Debian), then stops and disables
# the services: through systemd when it runs; else the init.d script is
# stopped and disabled, and so is the systemd unit (systemctl disable works
# without a running systemd), lest a later boot with systemd start it.
define install-server
@missing=; for p in $(1); do command -v $$p >/dev/null 2>&1 || [ -x /usr/sbin/$$p ] || missing="$$missing $$p"; done; \
[ -z "$$missing" ] || { \
  echo "missing:$$missing"; \
  if [ "$$(uname)" = Darwin ]; then \
    echo "installing $(4) (Homebrew) for $(5)"; brew install $(4); \
  else \
    sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
    echo "installing $(2) (Debian packages) for $(5)"; \
    { $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $(2) || \
      { $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $(2); }; } && \
    for s in $(3); do \
      if [ -d /run/systemd/system ]; then \
        $$sudo systemctl disable --now $$s.service >/dev/null 2>&1 || true; \
      else \
        if [ -x /etc/init.d/$$s ]; then \
          $$sudo /etc/init.d/$$s stop >/dev/null 2>&1 || true; \
          $$sudo update-rc.d $$s disable >/dev/null 2>&1 || true; \
        fi; \
        if command -v systemctl >/dev/null 2>&1; then \
          $$sudo systemctl disable $$s.service >/dev/null 2>&1 || true; \
        fi; \
      fi; \
      echo "stopped and disabled the $$s system service the package started"; \
    done; \
  fi; }
endef
