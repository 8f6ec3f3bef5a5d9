package dev.steer.engine;

import dev.steer.llama.LlamaContext;
import dev.steer.llama.LlamaModel;
import dev.steer.llama.LlamaSampler;
import java.nio.charset.StandardCharsets;

/**
 * A steer's checks and its cut. {@link #check} is the one validation of a steer, wherever it is applied (a live
 * generation on the decode thread, a finished answer on an HTTP thread); {@link #cut} is the surgery on a slot: the KV
 * cache and the tokens back to the fork, the correction appended, fork token + correction queued for decoding.
 */
public final class SteerSurgery {
    private SteerSurgery() {}

    /**
     * Checks a steer that keeps {@code at} of {@code output} and appends {@code correction}: {@code at} inside the
     * output, the result fitting in {@code perSequence} positions after a prompt of {@code promptLength}, every
     * correction token allowed by the request's grammar at that point. Returns the sampler positioned after the
     * correction (a fresh one that has seen the kept output and the correction: grammar and penalty state at the
     * fork); the caller owns it.
     *
     * @throws SteerRefusedException with reason BAD_AT, EMPTY, DOES_NOT_FIT or GRAMMAR; nothing is left open
     */
    public static LlamaSampler check(LlamaModel model, LlamaSampler.Params sampling, int[] output, int outputLength,
                                     int promptLength, int perSequence, int at, int[] correction) {
        if (at < 0 || at > outputLength) {
            throw new SteerRefusedException(SteerRefusedException.Reason.BAD_AT, "The completion has only " + outputLength
                    + " output tokens so far; 'at' must be between 0 and " + outputLength + ".");
        }
        if (correction.length == 0) {
            throw new SteerRefusedException(SteerRefusedException.Reason.EMPTY, "the correction is empty");
        }
        if (promptLength + at + correction.length >= perSequence) {
            throw new SteerRefusedException(SteerRefusedException.Reason.DOES_NOT_FIT,
                    "the steered completion no longer fits in this server's context per request");
        }
        LlamaSampler next = LlamaSampler.create(model, sampling);
        try {
            for (int i = 0; i < at; i++) {
                next.accept(output[i]);
            }
            for (int i = 0; i < correction.length; i++) {
                if (!next.canAccept(correction[i])) {
                    throw new SteerRefusedException(SteerRefusedException.Reason.GRAMMAR, "the correction's token " + i + " ("
                            + new String(model.tokenBytes(correction[i], false), StandardCharsets.UTF_8)
                            + ") is not allowed by the request's grammar at that point");
                }
                next.accept(correction[i]);
            }
            return next;
        } catch (RuntimeException e) {
            next.close();
            throw e;
        }
    }

    /**
     * The surgery, which cannot fail once {@link #check} passed: cuts the slot's KV cache back to before the fork
     * token (the last kept token, decoded again for the fork's logits; nothing earlier is recomputed), makes its output
     * kept + correction, and queues fork token + correction as its input with the fork's logits kept. Returns the
     * steer (its fork log-probs still to come).
     */
    static SteerEvent cut(LlamaContext context, Slot s, int at, int[] correction) {
        int[] accepted = s.out.written(0, at);
        int[] rejected = s.out.written(at, s.out.writtenLength());
        int fork = s.outputStart + at - 1;
        int forkToken = at == 0 ? s.cached[fork] : s.out.writtenAt(at - 1);
        context.removeTokens(s.seq, fork, -1);
        s.cachedLength = Math.min(s.cachedLength, fork);
        s.out.cut(at, correction);  // its readers see the cut once the steer is reported
        int[] input = new int[1 + correction.length];
        input[0] = forkToken;
        System.arraycopy(correction, 0, input, 1, correction.length);
        s.input = input;
        s.inputDone = 0;
        s.forkInput = 0;
        return new SteerEvent(at, accepted, rejected, correction.clone(), null);
    }
}
