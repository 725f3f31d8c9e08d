package darwin

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"
)

// TestConstantsMatchHeaders compares every value the native layer takes
// from Apple's headers with a literal quoted from the named header, so a
// changed constant fails here. Headers are from the macOS 11.3 SDK
// (phracker/MacOSX-SDKs) unless the entry says otherwise.
func TestConstantsMatchHeaders(t *testing.T) {
	tests := []struct {
		name   string
		got    int64
		want   int64
		source string
	}{
		// Security/AuthSession.h (Apple Security sources as mirrored in
		// darlinghq/darling-security 9b7bb1f)
		{"callerSecuritySession", int64(callerSecuritySession), 0xFFFFFFFF,
			"AuthSession.h: callerSecuritySession = ((SecuritySessionId)-1), SecuritySessionId is UInt32"},
		{"sessionHasGraphicAccess", sessionHasGraphicAccess, 0x0010,
			"AuthSession.h: sessionHasGraphicAccess = 0x0010, /* graphic subsystem (CoreGraphics et al) available */"},

		// Security/CSCommon.h
		{"kSecCSDefaultFlags", kSecCSDefaultFlags, 0, "CSCommon.h: kSecCSDefaultFlags = 0"},
		{"SignatureAdhoc", SignatureAdhoc, 0x0002, "CSCommon.h: kSecCodeSignatureAdhoc = 0x0002"},
		{"SignatureRuntime", SignatureRuntime, 0x10000, "CSCommon.h: kSecCodeSignatureRuntime = 0x10000"},
		{"SignatureLinkerSigned", SignatureLinkerSigned, 0x20000, "CSCommon.h: kSecCodeSignatureLinkerSigned = 0x20000"},
		{"errSecCSNoSuchCode", errSecCSNoSuchCode, -67065, "CSCommon.h: errSecCSNoSuchCode = -67065"},
		{"errSecCSUnsigned", errSecCSUnsigned, -67062, "CSCommon.h: errSecCSUnsigned = -67062"},
		{"errSecCSSignatureFailed", errSecCSSignatureFailed, -67061, "CSCommon.h: errSecCSSignatureFailed = -67061"},
		{"errSecCSReqInvalid", errSecCSReqInvalid, -67052, "CSCommon.h: errSecCSReqInvalid = -67052"},
		{"errSecCSReqUnsupported", errSecCSReqUnsupported, -67051, "CSCommon.h: errSecCSReqUnsupported = -67051"},
		{"errSecCSReqFailed", errSecCSReqFailed, -67050, "CSCommon.h: errSecCSReqFailed = -67050"},

		// Security/SecCode.h (darlinghq/darling-security 9b7bb1f)
		{"kSecCSSigningInformation", kSecCSSigningInformation, 2, "SecCode.h: kSecCSSigningInformation = 1 << 1"},

		// CoreFoundation
		{"kCFStringEncodingUTF8", kCFStringEncodingUTF8, 0x08000100, "CFString.h: kCFStringEncodingUTF8 = 0x08000100, /* kTextEncodingUnicodeDefault + kUnicodeUTF8Format */"},
		{"kCFNumberSInt64Type", kCFNumberSInt64Type, 4, "CFNumber.h: kCFNumberSInt64Type = 4"},

		// DeviceCheck/DCError.h: NS_ERROR_ENUM(DCErrorDomain, DCError) {
		// (DCAppAttestService's completion handlers report the same codes;
		// macOS 27 adds at least one whose value is not public, which
		// NewAppAttestError maps to ErrUnknownDCErrorCode with its number.)
		// DCErrorUnknownSystemFailure, DCErrorFeatureUnsupported,
		// DCErrorInvalidInput, DCErrorInvalidKey, DCErrorServerUnavailable }
		// (iOS 16.1 SDK copy in xybp888/iOS-SDKs; the macOS 10.15 SDK has
		// the first two in the same order): values by position.
		{"DCErrorUnknownSystemFailure", DCErrorUnknownSystemFailure, 0, "DCError.h: first enumerator"},
		{"DCErrorFeatureUnsupported", DCErrorFeatureUnsupported, 1, "DCError.h: second enumerator"},
		{"DCErrorInvalidInput", DCErrorInvalidInput, 2, "DCError.h: third enumerator"},
		{"DCErrorInvalidKey", DCErrorInvalidKey, 3, "DCError.h: fourth enumerator"},
		{"DCErrorServerUnavailable", DCErrorServerUnavailable, 4, "DCError.h: fifth enumerator"},

		// Security/SecBase.h: CF_ENUM(OSStatus) { … } (macOS 11.3 SDK)
		{"errSecSuccess", errSecSuccess, 0, "SecBase.h: errSecSuccess = 0, /* No error. */"},
		{"errSecUserCanceled", errSecUserCanceled, -128, "SecBase.h: errSecUserCanceled = -128, /* User canceled the operation. */"},
		{"errSecNotAvailable", errSecNotAvailable, -25291, "SecBase.h: errSecNotAvailable = -25291, /* No keychain is available. … */"},
		{"errSecAuthFailed", errSecAuthFailed, -25293, "SecBase.h: errSecAuthFailed = -25293, /* The user name or passphrase you entered is not correct. */"},
		{"errSecNoSuchKeychain", errSecNoSuchKeychain, -25294, "SecBase.h: errSecNoSuchKeychain = -25294, /* The specified keychain could not be found. */"},
		{"errSecDuplicateItem", errSecDuplicateItem, -25299, "SecBase.h: errSecDuplicateItem = -25299, /* The specified item already exists in the keychain. */"},
		{"errSecItemNotFound", errSecItemNotFound, -25300, "SecBase.h: errSecItemNotFound = -25300, /* The specified item could not be found in the keychain. */"},
		{"errSecNoDefaultKeychain", errSecNoDefaultKeychain, -25307, "SecBase.h: errSecNoDefaultKeychain = -25307, /* A default keychain could not be found. */"},
		{"errSecInteractionNotAllowed", errSecInteractionNotAllowed, -25308, "SecBase.h: errSecInteractionNotAllowed = -25308, /* User interaction is not allowed. */"},

		// audit_token_t: mach/message.h typedef struct { unsigned int
		// val[8]; } audit_token_t; bsm/libbsm.h audit_token_to_pid reads
		// atoken.val[5].
		{"sizeof(auditToken)", int64(unsafe.Sizeof(auditToken{})), 32, "mach/message.h: unsigned int val[8]"},
		{"auditTokenPIDWord", auditTokenPIDWord, 5, "libbsm.h: audit_token_to_pid: atoken.val[5]"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %#x, want %#x (%s)", tt.name, tt.got, tt.want, tt.source)
		}
	}
}

// TestStringsMatchApple pins the strings the layer compares with Apple's.
func TestStringsMatchApple(t *testing.T) {
	for _, tt := range []struct{ name, got, want, source string }{
		// Apple's documentation of DCErrorDomain (the header declares only
		// extern NSErrorDomain const DCErrorDomain).
		{"DCErrorDomain", DCErrorDomain, "com.apple.devicecheck.error", "developer.apple.com/documentation/devicecheck/dcerrordomain"},
		// libdispatch init.c: _dispatch_main_q's .dq_label.
		{"mainQueueLabel", mainQueueLabel, "com.apple.main-thread", "libdispatch src/init.c: .dq_label = \"com.apple.main-thread\""},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q (%s)", tt.name, tt.got, tt.want, tt.source)
		}
	}
}

// TestStatusTextsMatchHeader checks the texts osStatusText gives for the
// Keychain's OSStatus values against the comments beside them in
// Security/SecBase.h (macOS 11.3 SDK), which is where Security's own
// SecErrorMessages.strings come from.
func TestStatusTextsMatchHeader(t *testing.T) {
	for _, tt := range []struct {
		status int32
		line   string
	}{
		{errSecUserCanceled, "errSecUserCanceled                       = -128,    /* User canceled the operation. */"},
		{errSecNotAvailable, "errSecNotAvailable                       = -25291,    /* No keychain is available. You may need to restart your computer. */"},
		{errSecAuthFailed, "errSecAuthFailed                         = -25293,    /* The user name or passphrase you entered is not correct. */"},
		{errSecNoSuchKeychain, "errSecNoSuchKeychain                     = -25294,    /* The specified keychain could not be found. */"},
		{errSecDuplicateItem, "errSecDuplicateItem                      = -25299,    /* The specified item already exists in the keychain. */"},
		{errSecItemNotFound, "errSecItemNotFound                       = -25300,    /* The specified item could not be found in the keychain. */"},
		{errSecNoDefaultKeychain, "errSecNoDefaultKeychain                  = -25307,    /* A default keychain could not be found. */"},
		{errSecInteractionNotAllowed, "errSecInteractionNotAllowed              = -25308,    /* User interaction is not allowed. */"},
	} {
		_, comment, ok := strings.Cut(tt.line, "/* ")
		comment = strings.TrimSuffix(comment, " */")
		if !ok || osStatusText[tt.status] != comment {
			t.Errorf("osStatusText[%d] = %q, SecBase.h says %q", tt.status, osStatusText[tt.status], tt.line)
		}
		if want := fmt.Sprintf("= %d,", tt.status); !strings.Contains(tt.line, want) {
			t.Errorf("%q does not declare %d", tt.line, tt.status)
		}
	}
}
