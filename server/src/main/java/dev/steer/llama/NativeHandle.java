package dev.steer.llama;

/**
 * A Java object that owns one native pointer.
 *
 * <p>{@link #handle()} refuses use after {@link #close()}, so a closed object raises IllegalStateException instead
 * of handing a dangling pointer to native code. Objects that native code keeps raw pointers to (a model under its
 * contexts, an adapter set on a context) count their users, and refuse to close while any remain.
 */
abstract class NativeHandle implements AutoCloseable {
    private long handle;
    private int users;

    NativeHandle(long handle) {
        if (handle == 0) {
            throw new LlamaException("native code returned no handle");
        }
        this.handle = handle;
    }

    final synchronized long handle() {
        if (handle == 0) {
            throw new IllegalStateException(getClass().getSimpleName() + " is closed");
        }
        return handle;
    }

    public final synchronized boolean isClosed() {
        return handle == 0;
    }

    /** Another native object now points at this one. */
    final synchronized void retain() {
        handle();
        users++;
    }

    final synchronized void release() {
        users--;
    }

    /** Frees the native object; the pointer is never used again. */
    protected abstract void free(long handle);

    @Override
    public final synchronized void close() {
        if (handle == 0) {
            return;
        }
        if (users > 0) {
            throw new IllegalStateException(getClass().getSimpleName() + " is still in use by " + users + " other native object(s)");
        }
        long h = handle;
        handle = 0;
        free(h);
    }
}
