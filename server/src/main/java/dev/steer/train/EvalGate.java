package dev.steer.train;

import dev.steer.llama.LlamaModel;
import dev.steer.llama.LoraTrainer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * Decides whether a freshly trained adapter may serve, by how it scores and by how it behaves, base model vs
 * adapter, on what the job did not train on (and, with too few held-out forks, on whether it learned what it did).
 *
 * <p>Scores (teacher-forced): the held-out corrections' mean NLL per token; preference accuracy (log p(correction)
 * > log p(rejected) at the fork); the canary text's perplexity; the mean KL(base || adapter) per token over the
 * probes' base answers.
 *
 * <p>Behaviour (greedy generation through the serving engine, {@link Greedy}): the <em>correction rate</em>, how
 * often the adapter's continuation from a held-out fork begins with the person's correction; and on probe prompts
 * nobody steered, how many answers <em>changed</em> (teacher-forced: within the base answer's first 40 characters
 * the adapter's greedy choice differs, at a step where the base was not near a tie, {@link #changedBeyondTie};
 * the plain text comparison is reported beside it as {@code probesChangedAtAll}) and how
 * many are <em>degenerate</em> ({@link Degenerate}: loops, repeated phrases), also counted on the held-out
 * continuations. The teacher-forced canary is blind to loops; these are not.
 *
 * <p>The adapter passes when the held-out NLL falls, the preference accuracy does not, the correction rate or the
 * preference accuracy rises above the base's, no more answers are degenerate than the base's (plus
 * {@code maxDegenerate}), at most {@code maxChanged} of the probe answers changed, and the canary drifts at most
 * {@code maxDrift}. Without held-out steers the verdict is "skipped". With fewer than {@link #FORKS_TO_JUDGE_LEARNING}
 * held-out forks the three checks of learning give way to one on the forks it trained on (the verdict says so).
 */
public final class EvalGate {
    /** A short, ordinary paragraph: its perplexity should not move when a few steers are learned. */
    public static final String DEFAULT_CANARY = "The library opens at nine in the morning and closes at six in the evening. "
            + "Visitors may borrow up to five books at a time, and each loan lasts three weeks. Quiet rooms on the "
            + "second floor can be reserved at the front desk.";

    /** Characters of an answer compared to call it changed (the start is what a reader sees first). */
    static final int CHANGED_PREFIX = 40;
    /** Tokens generated from a held-out fork: enough for the correction and a loop to show. */
    static final int FORK_TOKENS = 48;
    /**
     * Tokens of each probe answer: loops often start after the first sentences (bench/efficacy saw unrelated
     * answers of 96 tokens loop 5-6 times in 18 for adapters whose 48-token probe answers did not).
     */
    static final int PROBE_TOKENS = 96;
    /** Tokens of the correction the continuation must begin with to count (the whole correction when shorter). */
    static final int CORRECTION_PREFIX = 6;

    /**
     * A base model's greedy choice it preferred by less than this (nats of log-probability over the token the
     * adapter chose) is a near-tie, and the adapter flipping it is not a change it made: on SmolLM2-135M Q4_1 a
     * random adapter far too small to learn anything (LoRA B ~ N(0, 1e-4)) already flips 5 of 24 ordinary answers
     * within their first 40 characters, every one at a step where the base's top two tokens were within 0.04 nats
     * (docs/training.md). 0.5 nats: the base preferred its token at least 1.65 times over the adapter's.
     */
    static final double TIE_MARGIN = 0.5;

    /**
     * @param maxDrift      largest accepted relative increase of the canary's perplexity (0.1: +10%)
     * @param autoActivate  activate the adapter when it passes
     * @param maxChanged    largest accepted fraction of probe answers that changed
     * @param maxDegenerate largest accepted rise of the fraction of degenerate answers over the base model's
     * @param scope         "steered": under the model's plain name the adapter serves the prompts like those of its
     *                      steers, the base model the rest ({@link dev.steer.adapters.Scope}); "all": every prompt
     */
    public record Settings(double maxDrift, boolean autoActivate, String canary, double maxChanged, double maxDegenerate, String scope) {
        /** {@code scope}: the adapter serves the prompts near its steers ({@link dev.steer.adapters.Scope}). */
        public static final String SCOPE_STEERED = "steered";
        /** {@code scope}: the adapter serves every prompt. */
        public static final String SCOPE_ALL = "all";

        public static Settings defaults() {
            return new Settings(0.1, true, DEFAULT_CANARY, 0.25, 0.0, SCOPE_STEERED);
        }

        /** Whether the adapter serves only near its steers; a job stored before scopes existed serves every prompt. */
        public boolean scoped() {
            return SCOPE_STEERED.equals(scope);
        }
    }

    /**
     * What the gate measured; {@code examples} shows a few answers before and after. {@code scope}: which prompts the
     * adapter serves ({@link Settings#scope}); {@code forksServed} of the held-out forks and {@code probesServed} of the
     * probes are those it serves (the rest answered as the base does); {@code probeKl} is the adapter's weights' on
     * every probe, served or not.
     */
    public record Report(int heldOut, double baseNll, double adapterNll, int preferencePairs, double basePreferenceAccuracy,
                         double adapterPreferenceAccuracy, double canaryBasePerplexity, double canaryAdapterPerplexity,
                         double drift, double maxDrift, int forks, boolean judgedOnHeldOut, double baseCorrectionRate, double adapterCorrectionRate,
                         int trainedForks, double trainedBaseCorrectionRate, double trainedAdapterCorrectionRate,
                         int probes, double probesChanged, double probesChangedAtAll, double probeKl, int answers, double baseDegenerate,
                         double adapterDegenerate, double maxChanged, double maxDegenerate, List<Example> examples,
                         String verdict, String reason, String scope, int forksServed, int probesServed) {
        public boolean passed() {
            return verdict.equals("passed");
        }
    }

    /** One prompt's answer before (base) and after (adapter). */
    public record Example(String kind, String prompt, String base, String adapter) {}

    /**
     * The base model's side of the comparisons, kept between jobs (most of it computed while the person steered,
     * {@link JobPreparation}): its name on the engine ({@code base@base}), its reference of an example (the adapter
     * off, {@link References}) and its greedy answers ({@link BaseAnswers}).
     */
    record Base(String model, Function<LoraTrainer.Example, LoraTrainer.Reference> reference, BaseAnswers answers) {}

    /** A probe prompt nobody steered and the base model's answer to it, with that answer's reference (KL). */
    record Probe(String prompt, int[] promptTokens, int[] baseAnswer, LoraTrainer.Example example, LoraTrainer.Reference reference) {}

    private EvalGate() {}

    /**
     * @param base         the base model's side: its name, references and greedy answers, kept between jobs
     * @param adapterModel the model name that serves the new adapter ({@code base@vN}), for greedy generation
     * @param serves       whether serving would give a prompt (its tokens) the adapter under the plain model name (its
     *                     {@link dev.steer.adapters.Scope}): behaviour is judged as served, so a held-out fork or probe
     *                     whose prompt goes to the base model answers as the base does there
     */
    static Report evaluate(LoraTrainer trainer, Base base, LlamaModel model, Greedy greedy, String adapterModel,
                           List<TrainingSet.Item> trained, List<TrainingSet.Item> heldOut, List<Probe> probes, int[] canary, Settings s,
                           Predicate<int[]> serves) {
        LoraTrainer.Weights w = LoraTrainer.Weights.sftOnly();
        double nllBase = 0, nllAdapter = 0;
        int tokens = 0, pairs = 0, winsBase = 0, winsAdapter = 0;
        for (TrainingSet.Item item : heldOut) {
            LoraTrainer.Example e = item.example();
            LoraTrainer.Reference ref = base.reference().apply(e);
            LoraTrainer.Evaluation adapter = trainer.evaluate(e, ref, w);
            nllBase -= ref.logpChosen();
            nllAdapter -= adapter.logpChosen();
            tokens += e.count(LoraTrainer.LEARN);
            if (e.rejected().length > 0) {
                pairs++;
                winsBase += ref.logpChosen() > ref.logpRejected() ? 1 : 0;
                winsAdapter += adapter.logpChosen() > adapter.logpRejected() ? 1 : 0;
            }
        }
        double pplBase = Double.NaN, pplAdapter = Double.NaN, drift = 0;
        if (canary.length >= 2) {
            LoraTrainer.Example c = new LoraTrainer.Example(new int[] {canary[0]}, Arrays.copyOfRange(canary, 1, canary.length), new int[0]);
            LoraTrainer.Reference ref = base.reference().apply(c);
            LoraTrainer.Evaluation adapter = trainer.evaluate(c, ref, w);
            pplBase = Math.exp(-ref.logpChosen() / (canary.length - 1));
            pplAdapter = Math.exp(-adapter.logpChosen() / (canary.length - 1));
            drift = pplAdapter / pplBase - 1;
        }
        double kl = 0;
        int changed = 0;  // beyond near-ties, teacher-forced on the base answer's first 40 characters
        List<Boolean> probeServed = probes.stream().map(p -> serves.test(p.promptTokens())).toList();
        for (int i = 0; i < probes.size(); i++) {
            Probe p = probes.get(i);
            kl += trainer.evaluate(p.example(), p.reference(), new LoraTrainer.Weights(0f, 0f, 0.1f, 1f)).kl();
            if (probeServed.get(i)) {  // a probe the base model answers is unchanged
                int rows = visiblePrefix(model, p.baseAnswer());
                changed += changedBeyondTie(trainer.predict(p.example(), true).keep(), p.reference(), rows) ? 1 : 0;
            }
        }
        double probeKl = probes.isEmpty() ? Double.NaN : kl / probes.size();

        // Behaviour: the held-out forks and the probes, base and adapter, greedy; where serving gives the prompt the
        // base model, the base's answer.
        List<TrainingSet.Fork> forks = new ArrayList<>();
        List<Boolean> forkServed = new ArrayList<>();
        for (TrainingSet.Item i : heldOut) {
            boolean served = serves.test(JobRunner.prompt(i.example()));
            for (TrainingSet.Fork f : i.forks()) {
                forks.add(f);
                forkServed.add(served);
            }
        }
        List<int[]> forkContexts = forks.stream().map(TrainingSet.Fork::context).toList();
        List<int[]> forkBase = base.answers().answers(base.model(), forkContexts, FORK_TOKENS);
        List<int[]> forkAdapter = asServed(forkBase, forkServed, greedy.answers(adapterModel, onlyServed(forkContexts, forkServed), FORK_TOKENS));
        List<int[]> probeAdapter = asServed(probes.stream().map(Probe::baseAnswer).toList(), probeServed,
                greedy.answers(adapterModel, onlyServed(probes.stream().map(Probe::promptTokens).toList(), probeServed), PROBE_TOKENS));
        int corrBase = 0, corrAdapter = 0, degBase = 0, degAdapter = 0, changedAtAll = 0, newLoops = 0, lostLoops = 0;
        List<Example> examples = new ArrayList<>();
        for (int i = 0; i < forks.size(); i++) {
            int[] want = forks.get(i).correction();
            corrBase += begins(forkBase.get(i), want) ? 1 : 0;
            corrAdapter += begins(forkAdapter.get(i), want) ? 1 : 0;
            String b = text(model, forkBase.get(i)), a = text(model, forkAdapter.get(i));
            boolean lb = Degenerate.is(b), la = Degenerate.is(a);
            degBase += lb ? 1 : 0;
            degAdapter += la ? 1 : 0;
            newLoops += la && !lb ? 1 : 0;
            lostLoops += lb && !la ? 1 : 0;
            if (examples.size() < 3) {
                examples.add(new Example("held-out fork (correction: " + text(model, want) + ")", tail(text(model, forks.get(i).context())), b, a));
            }
        }
        for (int i = 0; i < probes.size(); i++) {
            String b = text(model, probes.get(i).baseAnswer()), a = text(model, probeAdapter.get(i));
            boolean lb = Degenerate.is(b), la = Degenerate.is(a);
            degBase += lb ? 1 : 0;
            degAdapter += la ? 1 : 0;
            newLoops += la && !lb ? 1 : 0;
            lostLoops += lb && !la ? 1 : 0;
            boolean differs = !prefix(b).equals(prefix(a));
            changedAtAll += differs ? 1 : 0;
            if (differs && examples.size() < 6) {
                examples.add(new Example("probe (changed)", probes.get(i).prompt(), b, a));
            }
        }
        int answers = forks.size() + probes.size();
        double rateBase = forks.isEmpty() ? Double.NaN : (double) corrBase / forks.size();
        double rateAdapter = forks.isEmpty() ? Double.NaN : (double) corrAdapter / forks.size();
        double changedFrac = probes.isEmpty() ? 0 : (double) changed / probes.size();
        double changedAtAllFrac = probes.isEmpty() ? 0 : (double) changedAtAll / probes.size();
        double dBase = answers == 0 ? 0 : (double) degBase / answers, dAdapter = answers == 0 ? 0 : (double) degAdapter / answers;

        double baseNll = tokens == 0 ? Double.NaN : nllBase / tokens;
        double adapterNll = tokens == 0 ? Double.NaN : nllAdapter / tokens;
        double accBase = pairs == 0 ? Double.NaN : (double) winsBase / pairs;
        double accAdapter = pairs == 0 ? Double.NaN : (double) winsAdapter / pairs;
        // Too few held-out forks to judge learning: whether it learned the corrections it trained on at all.
        Checkpoints.Learned trainedBase = new Checkpoints.Learned(0, 0), trainedAdapter = trainedBase;
        if (!heldOut.isEmpty() && forks.size() < FORKS_TO_JUDGE_LEARNING) {  // (without held-out steers: "skipped")
            trainedBase = Checkpoints.forksLearned(trainer, trained, false);
            trainedAdapter = Checkpoints.forksLearned(trainer, trained, true);
        }
        Measured m = new Measured(heldOut.size(), baseNll, adapterNll, pairs, accBase, accAdapter, drift, forks.size(), rateBase, rateAdapter,
                probes.size(), changed, answers, degBase, degAdapter, newLoops, lostLoops, trainedAdapter.forks(), trainedBase.learned(),
                trainedAdapter.learned());
        String[] decision = decide(m, s);
        String verdict = decision[0], reason = decision[1];
        return new Report(heldOut.size(), baseNll, adapterNll, pairs, accBase, accAdapter, pplBase, pplAdapter, drift, s.maxDrift(),
                forks.size(), judgesLearning(m), rateBase, rateAdapter, m.trainedForks(), rate(trainedBase), rate(trainedAdapter),
                probes.size(), changedFrac, changedAtAllFrac, probeKl, answers, dBase, dAdapter,
                s.maxChanged(), s.maxDegenerate(), List.copyOf(examples), verdict, reason, s.scoped() ? Settings.SCOPE_STEERED : Settings.SCOPE_ALL,
                (int) forkServed.stream().filter(x -> x).count(), (int) probeServed.stream().filter(x -> x).count());
    }

    private static List<int[]> onlyServed(List<int[]> prompts, List<Boolean> served) {
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++) {
            if (served.get(i)) {
                out.add(prompts.get(i));
            }
        }
        return out;
    }

    /** The adapter's answers where it serves (in order), the base's elsewhere. */
    private static List<int[]> asServed(List<int[]> base, List<Boolean> served, List<int[]> adapter) {
        List<int[]> out = new ArrayList<>(base.size());
        int next = 0;
        for (int i = 0; i < base.size(); i++) {
            out.add(served.get(i) ? adapter.get(next++) : base.get(i));
        }
        return out;
    }

    /** What the verdict is decided on (counts, not fractions, where the message names them). */
    record Measured(int heldOut, double baseNll, double adapterNll, int pairs, double baseAccuracy, double adapterAccuracy, double drift,
                    int forks, double baseCorrectionRate, double adapterCorrectionRate, int probes, int changed, int answers,
                    int baseDegenerate, int adapterDegenerate, int newLoops, int lostLoops, int trainedForks, int trainedBaseLearned,
                    int trainedAdapterLearned) {}

    private static double rate(Checkpoints.Learned l) {
        return l.forks() == 0 ? Double.NaN : (double) l.learned() / l.forks();
    }

    /**
     * How unlikely a rise in loops must be under chance before it refuses an adapter. Any adapter flips the base's
     * near-ties (see {@link #changedBeyondTie}), and on a 135M model a flipped answer loops about as often as the
     * base's answers do, so an adapter that learned nothing harmful loops on a few answers the base did not and
     * stops on a few it did. Counting totals alone (the rule before) refused good adapters at random: the CI e2e
     * test's one-habit adapter 3-5 loops of 14 against the base's 2-3. So the rise must also be beyond a one-sided
     * sign test on the answers that differ in looping: with none the other way, 4 new loops refuse; a collapse
     * (10+) always does.
     */
    static final double LOOP_CHANCE = 0.1;

    /** P(X >= newLoops) for X ~ Binomial(newLoops + lostLoops, 1/2): how often chance alone loops this much more. */
    static double loopsByChance(int newLoops, int lostLoops) {
        int n = newLoops + lostLoops;
        double p = 0, c = 1;  // c = C(n, k)
        for (int k = 0; k <= n; k++) {
            if (k >= newLoops) {
                p += c;
            }
            c = c * (n - k) / (k + 1);
        }
        return p / Math.pow(2, n);
    }

    /**
     * Held-out forks below which the checks of learning (NLL, preference accuracy, correction rate) give way to
     * {@link #notLearnedWhereTrained}: one or two forks cannot tell an adapter that learned a habit from one that did not. With the default
     * {@code validation_split} (a tenth, at least one) a job of up to 14 answers holds out one and one of up to 24 two,
     * so below about 25 steered answers learning is often not judged. On SmolLM2 the gate refused 3 of 4 single-habit
     * adapters of 9 and 13 recorded steers, each on its one held-out answer (a verdict the adapter gave the other way,
     * "No." for the person's "Yes."; a stop where it did not end; a temperature it gave otherwise), while the bench
     * found them following the habit on 6 to 8 of 8 held-out prompts with no leakage (docs/training.md, sixteenth
     * session). For the correction rate, at a true rate of 3 in 4, one fork misses a quarter of the time and three all
     * miss 1.6% of the time; the NLL is pooled over the forks' tokens, so one contrary fork can still move it at three.
     * The bounds on harm (loops, probes changed, canary) hold at any size.
     */
    static final int FORKS_TO_JUDGE_LEARNING = 3;

    static boolean judgesLearning(Measured m) {
        return m.forks() >= FORKS_TO_JUDGE_LEARNING;
    }

    /** The verdict ("passed", "failed" or "skipped") and why: the first bound the adapter breaks, in the order below. */
    static String[] decide(Measured m, Settings s) {
        double dBase = m.answers() == 0 ? 0 : (double) m.baseDegenerate() / m.answers();
        double dAdapter = m.answers() == 0 ? 0 : (double) m.adapterDegenerate() / m.answers();
        double changed = m.probes() == 0 ? 0 : (double) m.changed() / m.probes();
        boolean judgeLearning = judgesLearning(m);
        if (m.heldOut() == 0) {
            return new String[] {"skipped", "no held-out steers (two or more answers with steers are needed for a split)"};
        }
        String notLearned = judgeLearning ? notLearned(m) : notLearnedWhereTrained(m);
        if (notLearned != null) {
            return failed(notLearned);
        }
        if (dAdapter > dBase + s.maxDegenerate() + 1e-9 && loopsByChance(m.newLoops(), m.lostLoops()) < LOOP_CHANCE) {
            return failed(String.format("%d of %d answers are degenerate (loops, repeated phrases), against %d for the base model"
                            + " (%d loop where the base's did not, %d the other way)",
                    m.adapterDegenerate(), m.answers(), m.baseDegenerate(), m.newLoops(), m.lostLoops()));
        } else if (changed > s.maxChanged() + 1e-9) {
            return failed(String.format("%d of %d answers to prompts nobody steered changed beyond near-ties (allowed: %.0f%%)", m.changed(), m.probes(),
                    100 * s.maxChanged()));
        } else if (m.drift() > s.maxDrift()) {
            return failed(String.format("canary perplexity drifted by %+.1f%%, more than the allowed %.1f%%", 100 * m.drift(), 100 * s.maxDrift()));
        }
        return new String[] {"passed", (judgeLearning ? "" : judgedWhereTrained(m)) + String.format(
                "held-out correction rate %.2f -> %.2f, NLL %.3f -> %.3f; %d of %d probe answers changed beyond near-ties; %d degenerate answers (base %d); canary drift %+.1f%%",
                m.baseCorrectionRate(), m.adapterCorrectionRate(), m.baseNll(), m.adapterNll(), m.changed(), m.probes(), m.adapterDegenerate(),
                m.baseDegenerate(), 100 * m.drift())};
    }

    /** Why the held-out forks say the adapter learned nothing, or null: the checks of learning, in order. */
    private static String notLearned(Measured m) {
        if (!(m.adapterNll() < m.baseNll())) {
            return String.format("held-out correction NLL did not improve (%.4f -> %.4f)", m.baseNll(), m.adapterNll());
        } else if (m.pairs() > 0 && m.adapterAccuracy() < m.baseAccuracy()) {
            return String.format("preference accuracy fell (%.3f -> %.3f)", m.baseAccuracy(), m.adapterAccuracy());
        } else if (m.forks() > 0 && !(m.adapterCorrectionRate() > m.baseCorrectionRate())
                && !(m.pairs() > 0 && m.adapterAccuracy() > m.baseAccuracy())) {
            // A correction can hold what no adapter says whole at a held-out fork (a converted temperature): then
            // preferring it to what it replaced is the evidence of learning there is (docs/training.md, tenth session).
            return String.format("the held-out correction rate did not rise (%.2f -> %.2f), nor the preference accuracy (%.2f -> %.2f):"
                    + " the adapter neither says the corrections nor prefers them to what they replaced",
                    m.baseCorrectionRate(), m.adapterCorrectionRate(), m.baseAccuracy(), m.adapterAccuracy());
        }
        return null;
    }

    /**
     * With too few held-out forks: of the training forks whose corrections the base does not already say (their first
     * tokens, teacher-forced), the adapter must say at least a quarter more. One that learned too little (too low a
     * learning rate, too few steps) says about what the base says, usually none: on SmolLM2 `verdict` at learning rate
     * 1e-4 and 1e-5, 0 of 12; the single-habit adapters that followed their habit in the bench said 57-91% (the average
     * a job saves is no copy of the last step's weights). This is no evidence that it generalizes, which one
     * or two held-out forks cannot give either. Without training forks to count (none has a correction row) nothing is
     * judged.
     */
    private static String notLearnedWhereTrained(Measured m) {
        int n = m.trainedForks(), unsaid = n - m.trainedBaseLearned();
        if (n == 0 || 4 * (m.trainedAdapterLearned() - m.trainedBaseLearned()) >= unsaid) {
            return null;
        }
        return String.format("learning judged on the %s it trained on (fewer than %d held-out forks): the adapter says %d of them,"
                        + " the base %d; at least %d more than the base are needed", count(n, "correction"), FORKS_TO_JUDGE_LEARNING,
                m.trainedAdapterLearned(), m.trainedBaseLearned(), (unsaid + 3) / 4);
    }

    /** The start of a passing verdict's reason when the held-out forks were too few to judge learning on. */
    private static String judgedWhereTrained(Measured m) {
        if (m.trainedForks() == 0) {
            return String.format("learning not judged (%s, %d or more are needed, and no training fork to count): ",
                    count(m.forks(), "held-out fork"), FORKS_TO_JUDGE_LEARNING);
        }
        return String.format("learning judged on the %s it trained on, not on held-out forks (%d; %d or more are needed, more"
                        + " steers give more): the adapter says %d of them, the base %d; ", count(m.trainedForks(), "correction"), m.forks(),
                FORKS_TO_JUDGE_LEARNING, m.trainedAdapterLearned(), m.trainedBaseLearned());
    }

    /** "1 fork", "2 forks". */
    private static String count(int n, String noun) {
        return n + " " + noun + (n == 1 ? "" : "s");
    }

    private static String[] failed(String reason) {
        return new String[] {"failed", reason};
    }

    /**
     * Does the adapter change the base model's answer beyond a near-tie? Teacher-forced on the base answer's first
     * {@code rows} rows: {@code adapterArgmax} is the adapter's greedy choice on each ({@link LoraTrainer#predict}),
     * {@code base} the base model's distributions there (its top token first). At the first row where the two
     * choose differently, greedy generation would diverge: a change when the base preferred its own token by
     * {@link #TIE_MARGIN} or more over the adapter's, a near-tie flip otherwise.
     */
    static boolean changedBeyondTie(int[] adapterArgmax, LoraTrainer.Reference base, int rows) {
        int K = LoraTrainer.REFERENCE_TOP_K;
        for (int r = 0; r < rows; r++) {
            int b = base.keepIds()[r * K];
            int a = adapterArgmax[r];
            if (a == b) {
                continue;
            }
            double pa = base.keepProbs()[r * K + K - 1];  // at most the K-th probability when outside the top K
            for (int k = 1; k < K; k++) {
                if (base.keepIds()[r * K + k] == a) {
                    pa = base.keepProbs()[r * K + k];
                    break;
                }
            }
            return Math.log(base.keepProbs()[r * K]) - Math.log(Math.max(pa, 1e-30)) >= TIE_MARGIN;
        }
        return false;
    }

    /** How many of the answer's tokens make up its first {@link #CHANGED_PREFIX} visible characters. */
    static int visiblePrefix(LlamaModel model, int[] answer) {
        for (int n = 1; n <= answer.length; n++) {
            if (model.detokenize(Arrays.copyOf(answer, n), true, false).strip().length() >= CHANGED_PREFIX) {
                return n;
            }
        }
        return answer.length;
    }

    /** Does {@code answer} begin with the correction's first {@link #CORRECTION_PREFIX} tokens? */
    static boolean begins(int[] answer, int[] correction) {
        int n = Math.min(CORRECTION_PREFIX, correction.length);
        return answer.length >= n && Arrays.equals(answer, 0, n, correction, 0, n);
    }

    private static String prefix(String s) {
        String t = s.strip();
        return t.length() <= CHANGED_PREFIX ? t : t.substring(0, CHANGED_PREFIX);
    }

    private static String text(LlamaModel model, int[] tokens) {
        return model.detokenize(tokens, true, false);
    }

    private static String tail(String s) {
        return s.length() <= 160 ? s : "…" + s.substring(s.length() - 160);
    }
}
