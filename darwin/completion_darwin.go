package darwin

import (
	"bytes"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego/objc"
)

// Foundation and NSObject selectors, registered once with the Objective-C
// runtime (libobjc, which purego's objc package loads at init).
var (
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
	// NSObject: - (BOOL)respondsToSelector:(SEL)aSelector;
	selRespondsToSelector = objc.RegisterName("respondsToSelector:")
)

// sendWithCompletion sends one message whose last argument is a completion
// handler of the type DeviceCheck's methods share,
//
//	void (^)(ResultType * _Nullable result, NSError * _Nullable error)
//
// with ResultType NSData or NSString. send makes the message send with the
// block it is given, and is called on a locked OS thread inside an
// autorelease pool. handle runs inside the block, on whatever thread Apple
// calls it, in an autorelease pool of its own, while result and error are
// alive: it must copy what it keeps. where says where the block ran.
//
// Block rules (see the package doc): NewBlock gives the block one
// reference, ours; the method that keeps the handler takes its own, and we
// release ours as soon as send returns, so the block lives exactly as
// long as Apple holds it.
func sendWithCompletion(send func(block objc.Block), handle func(result, nserr objc.ID, where Completion)) error {
	if err := loadSystem(); err != nil {
		return err
	}
	return inAutoreleasePool(func() {
		requestThread := threadID()
		var returned atomic.Bool
		// purego passes the block itself first. All DeviceCheck completion
		// handlers have this Go type, so they share one purego callback.
		block := objc.NewBlock(func(_ objc.Block, result, nserr objc.ID) {
			where := here()
			where.RequestThread, where.DuringRequest = requestThread, !returned.Load()
			// void *objc_autoreleasePoolPush(void);
			pool := autoreleasePoolPush()
			// void objc_autoreleasePoolPop(void *context);
			defer autoreleasePoolPop(pool)
			handle(result, nserr, where)
		})
		send(block)
		returned.Store(true)
		// Our reference goes as soon as the send returns. A callee that
		// keeps a block to call it later must take its own reference
		// (_Block_copy, which ARC's objc_retainBlock is), since callers
		// pass blocks that live on their stack (Block-ABI-Apple); Apple then
		// releases the block when it is done with it, and its dispose
		// helper frees purego's closure, so a handler Apple drops without
		// calling is freed then too.
		// void _Block_release(const void *aBlock);
		block.Release()
	})
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

// nsErrorFields copies an NSError's domain, code and localized
// description.
func nsErrorFields(nserr objc.ID) (domain string, code int64, description string) {
	// @property (readonly, copy) NSErrorDomain domain;
	domain = nsString(nserr.Send(selDomain))
	// @property (readonly) NSInteger code;
	code = objc.Send[int64](nserr, selCode)
	// @property (readonly, copy) NSString *localizedDescription;
	description = nsString(nserr.Send(selLocalizedDescription))
	return domain, code, description
}

// nsDataBytes copies an NSData's bytes; nil or empty gives nil.
func nsDataBytes(data objc.ID) []byte {
	if data == 0 {
		return nil
	}
	// @property (readonly) NSUInteger length;
	n := objc.Send[uint64](data, selLength)
	if n == 0 {
		return nil
	}
	// @property (readonly) const void *bytes;
	p := objc.Send[unsafe.Pointer](data, selBytes)
	if p == nil {
		return nil
	}
	return bytes.Clone(unsafe.Slice((*byte)(p), n))
}

// nsString copies an NSString; nil gives "".
func nsString(s objc.ID) string {
	if s == 0 {
		return ""
	}
	// @property (nullable, readonly) const char *UTF8String;
	return objc.Send[string](s, selUTF8String)
}

// responds reports whether obj (an instance, or a class for its class
// methods) implements sel.
func responds(obj objc.ID, sel objc.SEL) bool {
	// - (BOOL)respondsToSelector:(SEL)aSelector;
	return objc.Send[bool](obj, selRespondsToSelector, sel)
}
