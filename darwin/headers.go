package darwin

// Values from Apple's SDK headers that the purego layer passes to or reads
// from Apple's functions. They live in this portable file so that
// headers_test.go, which holds each value as a literal quoted from the
// named header, checks them on every OS. Constants that
// golang.org/x/sys/unix defines for darwin (SOL_LOCAL, LOCAL_PEERTOKEN,
// errno values) are taken from there instead.
const (
	// kCFStringEncodingUTF8 is a CFStringBuiltInEncodings value
	// (CoreFoundation/CFString.h).
	kCFStringEncodingUTF8 = 0x08000100
	// kCFNumberSInt64Type is a CFNumberType value
	// (CoreFoundation/CFNumber.h).
	kCFNumberSInt64Type = 4

	// kSecCSDefaultFlags is the SecCSFlags value for default behaviour
	// (Security/CSCommon.h).
	kSecCSDefaultFlags = 0
	// kSecCSSigningInformation asks SecCodeCopySigningInformation for the
	// signing information, the Team ID among it (Security/SecCode.h).
	kSecCSSigningInformation = 1 << 1

	// mainQueueLabel is the label of the main dispatch queue, as
	// dispatch_queue_get_label reports it (libdispatch's
	// _dispatch_main_q).
	mainQueueLabel = "com.apple.main-thread"

	// auditTokenWords is the size of audit_token_t in 32-bit words
	// (mach/message.h: unsigned int val[8]); auditTokenPIDWord is the word
	// audit_token_to_pid reads (bsm/libbsm.h: atoken.val[5]).
	auditTokenWords   = 8
	auditTokenPIDWord = 5
)

// OSStatus values of SecItem calls (Security/SecBase.h) that the Keychain
// item names. Their texts, quoted from the header's comments, are in
// osStatusText.
const (
	errSecSuccess               = 0
	errSecUserCanceled          = -128
	errSecNotAvailable          = -25291
	errSecAuthFailed            = -25293
	errSecNoSuchKeychain        = -25294
	errSecDuplicateItem         = -25299
	errSecItemNotFound          = -25300
	errSecNoDefaultKeychain     = -25307
	errSecInteractionNotAllowed = -25308
)
