package dev.steer.engine;

/** A submitted generation; {@link #cancel()} stops it within one decode step and frees its sequence. */
public interface Generation {
    void cancel();
}
