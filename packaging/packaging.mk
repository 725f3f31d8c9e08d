# Packaging: the universal helper, Attestd.app, its LaunchAgent, signing,
# notarization and verification. Included by the Makefile; see
# packaging/README.md for every variable and for embedding in a host app.
#
#   make universal bundle verify-bundle          any OS (unsigned: verify fails, as expected)
#   make universal bundle sign verify-bundle TEAM_ID=… IDENTITY=…   on a Mac
#   make notarize NOTARY_PROFILE=… [NOTARIZE_APP=Host.app]   after sign

DIST         ?= dist
BUNDLE_ID    ?= dev.attestd.helper
LABEL        ?= dev.attestd.agent
# TEAM_ID: the 10-character Apple team; empty lets verify-bundle accept any.
TEAM_ID      ?=
# IDENTITY: codesign identity; a unique prefix of the certificate name is enough.
IDENTITY     ?= Developer ID Application
# PROFILE: optional provisioning profile embedded as Contents/embedded.provisionprofile.
PROFILE      ?=
# ENTITLEMENTS: the profile variant (application identifier, team) when a profile is embedded.
ENTITLEMENTS ?= $(if $(PROFILE),entitlements/attestd.profile.entitlements,entitlements/attestd.entitlements)
# SOCKET_KEY: the variable launchd publishes the agent's socket path in; empty
# derives it from LABEL (ATTESTD_SOCKET_ + LABEL, '.' as '_', '-' as '__').
SOCKET_KEY   ?=
# PEER_REQUIREMENT: the code requirement a client must satisfy; empty gives the
# team's (anchor apple generic and certificate leaf[subject.OU] = "TEAM_ID")
# when TEAM_ID is set; none admits any process of the user.
PEER_REQUIREMENT ?=
# App Attest (packaging/README.md, "App Attest"). PROVIDER: the agent's provider,
# auto, devicecheck or appattest; empty gives auto with APPATTEST_REGISTER, else
# devicecheck. APPATTEST_ENV: development or production, the App Attest
# environment the helper is entitled to (needs PROFILE); empty: none.
# APPATTEST_REGISTER: the https base URL the agent registers its key with.
PROVIDER           ?=
APPATTEST_ENV      ?=
APPATTEST_REGISTER ?=
# SIGNER: codesign or rcodesign; empty picks codesign on macOS, else rcodesign.
SIGNER       ?=
# rcodesign signing credentials (Linux CI).
P12_FILE          ?=
P12_PASSWORD_FILE ?=
# Notary credentials: a notarytool keychain profile, or an App Store Connect
# API key (.p8, key id, issuer); for rcodesign the JSON key file.
NOTARY_PROFILE      ?=
NOTARY_KEY          ?=
NOTARY_KEY_ID       ?=
NOTARY_ISSUER       ?=
NOTARY_API_KEY_JSON ?=
# SIGN_APP, SIGN_ENTITLEMENTS: what make sign signs, with which entitlements: the
# helper by default; the host app (after embedding the signed helper) with its own.
SIGN_APP          ?= $(DIST)/Attestd.app
SIGN_ENTITLEMENTS ?= $(DIST)/Attestd.entitlements
# NOTARIZE_APP: what make notarize submits: the helper alone, or the signed host app.
NOTARIZE_APP ?= $(DIST)/Attestd.app

PKG := bin/attestd-pkg

# The real @electron/osx-sign the signing-ignore test runs (pinned, git-ignored
# folder, fetched by make test): the version electron-builder 26.0.x pins and
# the one electron-builder 27 pins.
OSX_SIGN_DIR := .osx-sign
OSX_SIGN_EB26 := 1.3.1
OSX_SIGN_EB27 := 2.4.0

.PHONY: universal bundle bundle-settings sign notarize verify-bundle pkg-tool no-socket-path osx-sign

# pkg-tool: the Go program behind these targets (built for this machine; cached).
pkg-tool:
	@CGO_ENABLED=0 $(GO) build -o $(PKG) ./cmd/attestd-pkg

## universal: darwin/arm64 + darwin/amd64 joined into $(DIST)/attestd.
universal: pkg-tool
	@mkdir -p $(DIST)
	GOOS=darwin GOARCH=arm64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/attestd-darwin-arm64 ./cmd/attestd
	GOOS=darwin GOARCH=amd64 CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/attestd-darwin-amd64 ./cmd/attestd
	$(PKG) fat -o $(DIST)/attestd $(DIST)/attestd-darwin-arm64 $(DIST)/attestd-darwin-amd64

BUNDLE_FLAGS = -bundle-id '$(BUNDLE_ID)' -label '$(LABEL)' -version '$(VERSION)' \
	-entitlements '$(ENTITLEMENTS)' -team-id '$(TEAM_ID)' -profile '$(PROFILE)' \
	-socket-key '$(SOCKET_KEY)' -peer-requirement '$(PEER_REQUIREMENT)' \
	-provider '$(PROVIDER)' -appattest-env '$(APPATTEST_ENV)' -appattest-register '$(APPATTEST_REGISTER)'

## bundle: $(DIST)/Attestd.app, $(DIST)/LaunchAgents/$(LABEL).plist, $(DIST)/Attestd.entitlements.
bundle: no-socket-path bundle-settings universal pkg-tool
	$(PKG) bundle -binary $(DIST)/attestd -out $(DIST) $(BUNDLE_FLAGS)

# bundle-settings: refuse a bad combination of settings (App Attest, TEAM_ID)
# before the universal binary is built.
bundle-settings: pkg-tool
	@$(PKG) bundle -check $(BUNDLE_FLAGS)

# no-socket-path: a shipped agent has no fixed socket path (SOCKET_PATH was
# removed): launchd expands neither ~ nor variables, so every user of the Mac
# would share one socket.
no-socket-path:
	@if [ -n '$(SOCKET_PATH)' ]; then \
	  echo "packaging: SOCKET_PATH is not offered for a shipped agent: launchd expands neither ~ nor" >&2; \
	  echo "packaging: variables, so every user of the Mac would share one socket. For development:" >&2; \
	  echo "packaging:   Attestd.app/Contents/MacOS/attestd agent install --socket PATH" >&2; exit 2; fi

## sign: sign $(SIGN_APP) once (hardened runtime, timestamp, entitlements; never --deep), then
## codesign --verify --strict it. IDENTITY=- signs ad hoc (no timestamp), as CI does.
sign: pkg-tool
	$(PKG) sign -bundle '$(SIGN_APP)' -entitlements '$(SIGN_ENTITLEMENTS)' -bundle-id '$(BUNDLE_ID)' \
		-signer '$(SIGNER)' -identity '$(IDENTITY)' -p12-file '$(P12_FILE)' -p12-password-file '$(P12_PASSWORD_FILE)'

## notarize: submit $(NOTARIZE_APP) to Apple's notary service, require Accepted (else print
## Apple's log and fail), and staple the ticket.
notarize: pkg-tool
	$(PKG) notarize -bundle '$(NOTARIZE_APP)' -signer '$(SIGNER)' \
		-keychain-profile '$(NOTARY_PROFILE)' -key '$(NOTARY_KEY)' -key-id '$(NOTARY_KEY_ID)' \
		-issuer '$(NOTARY_ISSUER)' -api-key-json '$(NOTARY_API_KEY_JSON)'

## verify-bundle: check slices, signatures, entitlements, the provisioning profile and the
## LaunchAgent (any OS), against the same variables make bundle was given.
verify-bundle: pkg-tool
	$(PKG) verify -bundle $(DIST)/Attestd.app -agent $(DIST)/LaunchAgents/$(LABEL).plist \
		-entitlements $(DIST)/Attestd.entitlements -bundle-id '$(BUNDLE_ID)' -team-id '$(TEAM_ID)' -label '$(LABEL)' \
		-peer-requirement '$(PEER_REQUIREMENT)' \
		-provider '$(PROVIDER)' -appattest-env '$(APPATTEST_ENV)' -appattest-register '$(APPATTEST_REGISTER)'

## osx-sign: the pinned @electron/osx-sign versions, into a git-ignored folder.
osx-sign: $(OSX_SIGN_DIR)/.installed-$(OSX_SIGN_EB26)-$(OSX_SIGN_EB27)
$(OSX_SIGN_DIR)/.installed-$(OSX_SIGN_EB26)-$(OSX_SIGN_EB27):
	mkdir -p $(OSX_SIGN_DIR)
	npm install --silent --no-audit --no-fund --engine-strict=false --prefix $(OSX_SIGN_DIR) \
		osx-sign-eb26@npm:@electron/osx-sign@$(OSX_SIGN_EB26) osx-sign-eb27@npm:@electron/osx-sign@$(OSX_SIGN_EB27)
	test -f $(OSX_SIGN_DIR)/node_modules/osx-sign-eb26/package.json
	test -f $(OSX_SIGN_DIR)/node_modules/osx-sign-eb27/package.json
	touch $@
