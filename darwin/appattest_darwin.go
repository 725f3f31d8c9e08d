package darwin

import (
	"errors"
	"sync"

	"github.com/ebitengine/purego/objc"
)

// App Attest's selectors (DeviceCheck/DCAppAttestService.h), registered
// once; isSupported is DCDevice's selIsSupported.
var (
	// @property (class, readonly) DCAppAttestService *sharedService;
	selSharedService = objc.RegisterName("sharedService")
	// - (void)generateKeyWithCompletionHandler:
	//     (void (^)(NSString * _Nullable keyId, NSError * _Nullable error))completionHandler;
	selGenerateKey = objc.RegisterName("generateKeyWithCompletionHandler:")
	// - (void)attestKey:(NSString *)keyId clientDataHash:(NSData *)clientDataHash
	//     completionHandler:(void (^)(NSData * _Nullable attestationObject, NSError * _Nullable error))completionHandler;
	selAttestKey = objc.RegisterName("attestKey:clientDataHash:completionHandler:")
	// - (void)generateAssertion:(NSString *)keyId clientDataHash:(NSData *)clientDataHash
	//     completionHandler:(void (^)(NSData * _Nullable assertionObject, NSError * _Nullable error))completionHandler;
	selGenerateAssertion = objc.RegisterName("generateAssertion:clientDataHash:completionHandler:")
)

// appAttestMethods are the instance methods attestd sends to the shared
// service; a macOS whose DCAppAttestService lacks one is unsupported.
var appAttestMethods = []struct {
	sel  objc.SEL
	name string
}{
	{selIsSupported, "isSupported"},
	{selGenerateKey, "generateKeyWithCompletionHandler:"},
	{selAttestKey, "attestKey:clientDataHash:completionHandler:"},
	{selGenerateAssertion, "generateAssertion:clientDataHash:completionHandler:"},
}

// appAttestNative is the aaNative that calls Apple.
type appAttestNative struct{}

var _ aaNative = appAttestNative{}

func newAppAttest(opts AppAttestOptions) (AppAttestService, error) {
	a, err := newAppAttestWith(appAttestNative{}, opts)
	if err != nil {
		return nil, err
	}
	return a, nil
}

func appAttestSupported() (bool, error) { return appAttestSupportedVia(appAttestNative{}) }

func (appAttestNative) guiSession() (bool, error) { return deviceCheckNative{}.guiSession() }

// attestService is DCAppAttestService.sharedService, loaded once; only
// after the GUI session check passed (checkAppAttest and
// appAttestSupportedVia make sure).
var attestService struct {
	once sync.Once
	id   objc.ID
	err  error
}

func loadAppAttest() (objc.ID, error) {
	attestService.once.Do(func() { attestService.id, attestService.err = loadAppAttestService() })
	return attestService.id, attestService.err
}

// loadAppAttestService finds the class, the shared instance and every
// method attestd sends, without calling any of them: the class exists from
// macOS 11, but only isSupported says whether it works.
func loadAppAttestService() (objc.ID, error) {
	if err := loadDeviceCheckFramework(); err != nil {
		return 0, err
	}
	// Class objc_getClass(const char *name);
	class := objc.GetClass("DCAppAttestService")
	if class == 0 {
		return 0, errAppAttestMissing("DeviceCheck.framework has no DCAppAttestService class")
	}
	var (
		svc objc.ID
		err error
	)
	if perr := inAutoreleasePool(func() { svc, err = sharedAppAttestService(objc.ID(class)) }); perr != nil {
		return 0, perr
	}
	return svc, err
}

func sharedAppAttestService(class objc.ID) (objc.ID, error) {
	if !responds(class, selSharedService) {
		return 0, errAppAttestMissing("DCAppAttestService has no sharedService")
	}
	// @property (class, readonly) DCAppAttestService *sharedService;
	svc := class.Send(selSharedService)
	if svc == 0 {
		return 0, errAppAttestMissing("DCAppAttestService.sharedService is nil")
	}
	for _, m := range appAttestMethods {
		if !responds(svc, m.sel) {
			return 0, errAppAttestMissing("DCAppAttestService does not respond to " + m.name)
		}
	}
	// - (instancetype)retain;  kept for the life of the process.
	return svc.Send(selRetain), nil
}

func (appAttestNative) supported() (bool, error) {
	svc, err := loadAppAttest()
	if err != nil {
		return false, err
	}
	var ok bool
	if err := inAutoreleasePool(func() {
		// @property (getter=isSupported, readonly) BOOL supported;
		ok = objc.Send[bool](svc, selIsSupported)
	}); err != nil {
		return false, err
	}
	return ok, nil
}

func (appAttestNative) generateKey(done func(aaResult)) error {
	svc, err := loadAppAttest()
	if err != nil {
		return err
	}
	return sendWithCompletion(func(block objc.Block) {
		// - (void)generateKeyWithCompletionHandler:
		//     (void (^)(NSString * _Nullable keyId, NSError * _Nullable error))completionHandler;
		svc.Send(selGenerateKey, block)
	}, func(keyID, nserr objc.ID, where Completion) {
		r := aaResult{where: where}
		if nserr != 0 {
			r.err = appAttestError(OpGenerateKey, nserr)
		} else {
			r.keyID = nsString(keyID)
		}
		done(r)
	})
}

func (appAttestNative) attestKey(keyID string, clientDataHash []byte, done func(aaResult)) error {
	return withKeyAndHash(OpAttestKey, keyID, clientDataHash, done, func(svc, key, hash objc.ID, block objc.Block) {
		// - (void)attestKey:(NSString *)keyId clientDataHash:(NSData *)clientDataHash
		//     completionHandler:(void (^)(NSData * _Nullable attestationObject, NSError * _Nullable error))completionHandler;
		svc.Send(selAttestKey, key, hash, block)
	})
}

func (appAttestNative) generateAssertion(keyID string, clientDataHash []byte, done func(aaResult)) error {
	return withKeyAndHash(OpGenerateAssertion, keyID, clientDataHash, done, func(svc, key, hash objc.ID, block objc.Block) {
		// - (void)generateAssertion:(NSString *)keyId clientDataHash:(NSData *)clientDataHash
		//     completionHandler:(void (^)(NSData * _Nullable assertionObject, NSError * _Nullable error))completionHandler;
		svc.Send(selGenerateAssertion, key, hash, block)
	})
}

// withKeyAndHash makes the NSString key id and the NSData clientDataHash
// (as their toll-free bridged CoreFoundation twins, CFString and CFData),
// sends op with send, and releases both once the send has returned: a
// method that uses an argument later retains it itself.
func withKeyAndHash(op AppAttestOp, keyID string, clientDataHash []byte, done func(aaResult),
	send func(svc, key, hash objc.ID, block objc.Block)) error {
	svc, err := loadAppAttest()
	if err != nil {
		return err
	}
	if err := loadCoreFoundation(); err != nil {
		return err
	}
	key := newCFString(keyID)
	if key == 0 {
		return errors.New("appattest " + string(op) + ": cannot make an NSString of the key id")
	}
	defer cfRelease(key)
	hash := newCFData(clientDataHash)
	if hash == 0 {
		return errors.New("appattest " + string(op) + ": cannot make an NSData of the clientDataHash")
	}
	defer cfRelease(hash)
	return sendWithCompletion(func(block objc.Block) {
		send(svc, objc.ID(key), objc.ID(hash), block)
	}, func(object, nserr objc.ID, where Completion) {
		r := aaResult{where: where}
		if nserr != 0 {
			r.err = appAttestError(op, nserr)
		} else {
			r.data = nsDataBytes(object)
		}
		done(r)
	})
}

// appAttestError copies the completion handler's NSError.
func appAttestError(op AppAttestOp, nserr objc.ID) *AppAttestError {
	domain, code, description := nsErrorFields(nserr)
	return NewAppAttestError(op, domain, code, description)
}
