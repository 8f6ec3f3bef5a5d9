package dev.steer.train;

import dev.steer.json.OmitWhenNull;

/**
 * What a fine-tuning job was asked to do; stored with the job as JSON, so a queued job survives a restart.
 *
 * @param model the base model id (steers of other models are never used: their token ids mean other things)
 */
public record JobSpec(String model, Hyperparameters.Method method, Hyperparameters hyperparameters, Filters filters,
                      EvalGate.Settings eval) {
    /** Which steers to train on (besides model, and excluded steers, which never train); null fields do not filter
     * (and the API leaves them out of the job). */
    public record Filters(@OmitWhenNull String sessionId, @OmitWhenNull String tag, @OmitWhenNull Long since, @OmitWhenNull Long until) {
        public static Filters all() {
            return new Filters(null, null, null, null);
        }
    }
}
