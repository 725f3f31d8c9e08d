package darwin

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"

	"github.com/attestd/attestd/bridge/provider"
)

const available = true

// Selectors, registered once with the Objective-C runtime (libobjc, which
// purego's objc package loads at init).
var (
	// + (DCDevice *)currentDevice;  (class property)
	selCurrentDevice = objc.RegisterName("currentDevice")
	// @property (getter=isSupported, readonly) BOOL supported;
	selIsSupported = objc.RegisterName("isSupported")
	// - (void)generateTokenWithCompletionHandler:
	//     (void (^)(NSData * _Nullable token, NSError * _Nullable error))completion;
	selGenerateToken = objc.RegisterName("generateTokenWithCompletionHandler:")
	// NSData: @property (readonly) NSUInteger length;
	selLength = objc.RegisterName("length")
	// NSData: @property (readonly) const void *bytes;
	selBytes = objc.RegisterName("bytes")
	// NSError: @property (readonly, copy) NSErrorDomain domain;
	selDomain = objc.RegisterName("domain")
	// NSError: @property (readonly) NSInteger code;
	selCode = objc.RegisterName("code")
	// NSError: @property (readonly, copy) NSString *localizedDescription;
	selLocalizedDescription = objc.RegisterName("localizedDescription")
	// NSString: @property (nullable, readonly) const char *UTF8String;
	selUTF8String = objc.RegisterName("UTF8String")
	// NSObject: - (instancetype)retain;
	selRetain = objc.RegisterName("retain")
)

// deviceCheckNative is the dcNative that calls Apple.
type deviceCheckNative struct{}

var _ dcNative = deviceCheckNative{}

func newDeviceCheck(opts DeviceCheckOptions) (provider.Provider, error) {
	d, err := newDeviceCheckWith(deviceCheckNative{}, opts)
	if err != nil {
		return nil, err
	}
	return d, nil
}

func deviceCheckSupported() (bool, error) { return supportedVia(deviceCheckNative{}) }

func guiSession() (bool, error) { return deviceCheckNative{}.guiSession() }

func (deviceCheckNative) guiSession() (bool, error) {
	if err := loadSecurity(); err != nil {
		return false, err
	}
	var id, attributes uint32
	// OSStatus SessionGetInfo(SecuritySessionId session,
	//     SecuritySessionId *sessionId, SessionAttributeBits *attributes);
	if st := sessionGetInfo(callerSecuritySession, &id, &attributes); st != 0 {
		return false, statusError("SessionGetInfo", st)
	}
	return hasGraphicAccess(attributes), nil
}

// device is DCDevice.currentDevice, loaded once; only after the GUI
// session check passed (checkDeviceCheck and supportedVia make sure).
var device struct {
	once sync.Once
	id   objc.ID
	err  error
}

func loadDevice() (objc.ID, error) {
	device.once.Do(func() {
		if err := loadObjC(); err != nil {
			device.err = err
			return
		}
		if _, err := purego.Dlopen(deviceCheckPath, purego.RTLD_NOW|purego.RTLD_GLOBAL); err != nil {
			device.err = &provider.Error{Reason: provider.ReasonUnsupported,
				Msg: "cannot load DeviceCheck.framework", Hint: provider.MacOSRequirement,
				Err: fmt.Errorf("dlopen %s: %w", deviceCheckPath, err)}
			return
		}
		// Class objc_getClass(const char *name);
		class := objc.GetClass("DCDevice")
		if class == 0 {
			device.err = &provider.Error{Reason: provider.ReasonUnsupported,
				Msg: "DeviceCheck.framework has no DCDevice class", Hint: provider.MacOSRequirement,
				Err: provider.ErrUnsupported}
			return
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		pool := autoreleasePoolPush()
		defer autoreleasePoolPop(pool)
		// + (DCDevice *)currentDevice;
		d := objc.ID(class).Send(selCurrentDevice)
		if d == 0 {
			device.err = &provider.Error{Reason: provider.ReasonUnsupported,
				Msg: "DCDevice.currentDevice is nil", Err: provider.ErrUnsupported}
			return
		}
		// - (instancetype)retain;  kept for the life of the process.
		device.id = d.Send(selRetain)
	})
	return device.id, device.err
}

func (deviceCheckNative) supported() (bool, error) {
	d, err := loadDevice()
	if err != nil {
		return false, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pool := autoreleasePoolPush()
	defer autoreleasePoolPop(pool)
	// @property (getter=isSupported, readonly) BOOL supported;
	return objc.Send[bool](d, selIsSupported), nil
}

func (deviceCheckNative) request(done func(token []byte, nserr *DCError)) error {
	d, err := loadDevice()
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pool := autoreleasePoolPush()
	defer autoreleasePoolPop(pool)

	var release blockRelease
	// The block's type is void (^)(NSData *token, NSError *error); purego
	// passes the block itself first. NewBlock returns it with one reference
	// (_Block_copy), which blockRelease gives back exactly once.
	block := objc.NewBlock(func(self objc.Block, token, nserr objc.ID) {
		done(completionResult(token, nserr))
		if release.called() {
			// void _Block_release(const void *aBlock);
			self.Release()
		}
	})
	// - (void)generateTokenWithCompletionHandler:
	//     (void (^)(NSData * _Nullable token, NSError * _Nullable error))completion;
	d.Send(selGenerateToken, block)
	if release.returned() {
		// void _Block_release(const void *aBlock);
		block.Release()
	}
	return nil
}

// completionResult copies what the completion handler got: the token's
// bytes, or the NSError's domain, code and description. It runs on Apple's
// thread, inside the handler, while the objects are alive.
func completionResult(token, nserr objc.ID) ([]byte, *DCError) {
	pool := autoreleasePoolPush()
	defer autoreleasePoolPop(pool)
	if nserr != 0 {
		return nil, NewDCError(
			// @property (readonly, copy) NSErrorDomain domain;
			nsString(nserr.Send(selDomain)),
			// @property (readonly) NSInteger code;
			objc.Send[int64](nserr, selCode),
			// @property (readonly, copy) NSString *localizedDescription;
			nsString(nserr.Send(selLocalizedDescription)),
		)
	}
	if token == 0 {
		return nil, nil
	}
	// @property (readonly) NSUInteger length;
	n := objc.Send[uint64](token, selLength)
	if n == 0 {
		return nil, nil
	}
	// @property (readonly) const void *bytes;
	p := objc.Send[unsafe.Pointer](token, selBytes)
	if p == nil {
		return nil, nil
	}
	return bytes.Clone(unsafe.Slice((*byte)(p), n)), nil
}

// nsString copies an NSString; nil gives "".
func nsString(s objc.ID) string {
	if s == 0 {
		return ""
	}
	// @property (nullable, readonly) const char *UTF8String;
	return objc.Send[string](s, selUTF8String)
}
