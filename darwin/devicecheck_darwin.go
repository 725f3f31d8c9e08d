package darwin

import (
	"runtime"
	"sync"

	"github.com/ebitengine/purego/objc"

	"github.com/attestd/attestd/bridge/provider"
)

const available = true

// DeviceCheck's selectors, registered once with the Objective-C runtime
// (libobjc, which purego's objc package loads at init). Foundation's are
// in completion_darwin.go.
var (
	// @property (class, readonly) DCDevice *currentDevice;
	selCurrentDevice = objc.RegisterName("currentDevice")
	// @property (getter=isSupported, readonly) BOOL supported;
	// (DCDevice.h; DCAppAttestService.h declares the same property.)
	selIsSupported = objc.RegisterName("isSupported")
	// - (void)generateTokenWithCompletionHandler:
	//     (void (^)(NSData * _Nullable token, NSError * _Nullable error))completion;
	selGenerateToken = objc.RegisterName("generateTokenWithCompletionHandler:")
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
		if err := loadDeviceCheckFramework(); err != nil {
			device.err = err
			return
		}
		// Class objc_getClass(const char *name);
		class := objc.GetClass("DCDevice")
		if class == 0 {
			device.err = &provider.Error{Reason: provider.ReasonUnsupported,
				Msg: "DeviceCheck.framework has no DCDevice class", HintText: provider.MacOSRequirement,
				Err: provider.ErrUnsupported}
			return
		}
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		pool := autoreleasePoolPush()
		defer autoreleasePoolPop(pool)
		// @property (class, readonly) DCDevice *currentDevice;
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

func (deviceCheckNative) request(done func(dcResult)) error {
	d, err := loadDevice()
	if err != nil {
		return err
	}
	return sendWithCompletion(func(block objc.Block) {
		// - (void)generateTokenWithCompletionHandler:
		//     (void (^)(NSData * _Nullable token, NSError * _Nullable error))completion;
		d.Send(selGenerateToken, block)
	}, func(token, nserr objc.ID, where Completion) {
		tok, dcErr := completionResult(token, nserr)
		done(dcResult{token: tok, err: dcErr, where: where})
	})
}

// completionResult copies what the completion handler got: the token's
// bytes, or the NSError's domain, code and description. It runs on Apple's
// thread, inside the handler, while the objects are alive.
func completionResult(token, nserr objc.ID) ([]byte, *DCError) {
	if nserr != 0 {
		return nil, NewDCError(nsErrorFields(nserr))
	}
	return nsDataBytes(token), nil
}
