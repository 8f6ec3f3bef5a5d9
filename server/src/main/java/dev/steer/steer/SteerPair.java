package dev.steer.steer;

import java.util.Arrays;

/**
 * What one steer teaches: the one definition Steer's own jobs ({@code train/TrainingSet}) and the exports
 * ({@link Exports}) both use, so a TRL or OpenAI run on an export trains the pair a Steer job trains.
 *
 * <p>After {@code prompt} + {@code kept} (the output the person accepted, and the tokens the correction shares
 * with what the model had said at the fork: those were agreed on, not corrected), {@code chosen} (the rest of the
 * correction) is preferred over {@code rejected} (what the model had said there, cut to chosen's length: the two
 * spans compared are of one length, so the longer side's extra tokens do not decide the preference).
 * {@code continuation} is what the person then let run: text they approved, never part of the preference (Steer
 * keeps it under the preservation term).
 *
 * <p>A stop (a "rejection": the person cut the answer and wrote nothing) says the answer should have ended there:
 * with {@link #of(SteerRecord, int)} its correction is the end-of-turn token, preferred over the first token the
 * model went on with. {@link #of(SteerRecord)} (the exports) gives it no correction: it teaches nothing there.
 */
public record SteerPair(int[] prompt, int[] kept, int[] chosen, int[] rejected, int[] continuation) {
    /** What a steer teaches; a stop teaches nothing (no correction). */
    public static SteerPair of(SteerRecord r) {
        return of(r, -1);
    }

    /**
     * What a steer teaches; a stop teaches {@code endOfTurn} in place of what it rejected (-1: nothing). A stop that
     * kept no output teaches nothing (an answer that ends before it begins is no answer: the person gave up on it),
     * nor one that rejected nothing (the answer had ended there, or a stop without a position ended it where it was).
     */
    public static SteerPair of(SteerRecord r, int endOfTurn) {
        int[] rej = r.rejectedTokens() == null ? new int[0] : r.rejectedTokens();
        boolean stop = r.kind().equals("rejection");
        boolean stopTeaches = endOfTurn >= 0 && stopTeaches(r, endOfTurn);
        int[] correction = stop ? (stopTeaches ? new int[] {endOfTurn} : new int[0])
                : r.correctionTokens() == null ? new int[0] : r.correctionTokens();
        int common = 0;
        while (common < correction.length && common < rej.length && correction[common] == rej[common]) {
            common++;
        }
        int[] chosen = Arrays.copyOfRange(correction, common, correction.length);
        int[] kept = concat(r.acceptedTokens(), Arrays.copyOf(correction, common));
        int[] rejected = Arrays.copyOfRange(rej, common, Math.min(rej.length, common + chosen.length));
        int[] continuation = r.continuationTokens() == null ? new int[0] : r.continuationTokens();
        return new SteerPair(r.promptTokens(), kept, chosen, rejected, continuation);
    }

    /**
     * Whether a stop is a lesson at all, however a job reads it: it kept output (else the person gave up on the
     * answer) and cut off some that was not the model's own end of turn (else the answer was ending there anyway).
     */
    public static boolean stopTeaches(SteerRecord stop, int endOfTurn) {
        int[] rej = stop.rejectedTokens();
        return stop.acceptedTokens().length > 0 && rej != null && rej.length > 0 && rej[0] != endOfTurn;
    }

    /** False when the correction only repeats what the model had said: then it teaches nothing. */
    public boolean teaches() {
        return chosen.length > 0;
    }

    /** Where {@code chosen} begins in prompt + kept + chosen + ... (the fork). */
    public int fork() {
        return prompt.length + kept.length;
    }

    static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
