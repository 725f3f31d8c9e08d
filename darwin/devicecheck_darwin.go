package darwin

import (
	"bytes"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
	"github.com/ebitengine/purego/objc"

	"github.com/attestd/attestd/bridge/provider"
)

const available = true

// Selectors, registered once with the Objective-C runtime (libobjc, which
// purego's objc package loads at init).
var (
	// @property (class, readonly) DCDevice *currentDevice;
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
	// NSObject: - (instancetype)retain OBJC_ARC_UNAVAILABLE;
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
				Msg: "cannot load DeviceCheck.framework", HintText: provider.MacOSRequirement,
				Err: fmt.Errorf("dlopen %s: %w", deviceCheckPath, err)}
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
	if err := loadSystem(); err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pool := autoreleasePoolPush()
	defer autoreleasePoolPop(pool)

	requestThread := threadID()
	var returned atomic.Bool
	// The block's type is void (^)(NSData *token, NSError *error); purego
	// passes the block itself first. NewBlock returns it with one
	// reference (_Block_copy), ours.
	block := objc.NewBlock(func(_ objc.Block, token, nserr objc.ID) {
		where := here()
		where.RequestThread, where.DuringRequest = requestThread, !returned.Load()
		tok, dcErr := completionResult(token, nserr)
		done(dcResult{token: tok, err: dcErr, where: where})
	})
	// - (void)generateTokenWithCompletionHandler:
	//     (void (^)(NSData * _Nullable token, NSError * _Nullable error))completion;
	d.Send(selGenerateToken, block)
	returned.Store(true)
	// Our reference goes as soon as the send returns. A callee that keeps
	// a block to call it later must take its own reference (_Block_copy,
	// which ARC's objc_retainBlock is), since callers pass blocks that
	// live on their stack (Block-ABI-Apple); Apple then releases the block
	// when it is done with it, and its dispose helper frees purego's
	// closure, so a handler Apple drops without calling is freed then too.
	// void _Block_release(const void *aBlock);
	block.Release()
	return nil
}

// threadID returns the calling thread's id (pthread_threadid_np).
func threadID() uint64 {
	var id uint64
	// int pthread_threadid_np(pthread_t thread, uint64_t *thread_id);
	// A NULL thread means the calling thread.
	pthreadThreadIDNP(0, &id)
	return id
}

// here says where the calling code runs: main thread or not, dispatch
// queue label, thread id.
func here() Completion {
	return Completion{
		// int pthread_main_np(void);
		MainThread: pthreadMainNP() == 1,
		// const char *dispatch_queue_get_label(dispatch_queue_t queue);
		// DISPATCH_CURRENT_QUEUE_LABEL is NULL: the current queue's label.
		Queue:  dispatchQueueGetLabel(0),
		Thread: threadID(),
	}
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
