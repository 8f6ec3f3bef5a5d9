package dev.steer.http;

import com.google.gson.JsonElement;
import com.google.gson.JsonParser;
import dev.steer.steer.SteerRecord;
import java.util.List;

/** A stored steer as the API shows it: the summary that lists and acknowledgements show, and everything, tokens included. */
final class SteerJson {
    private SteerJson() {}

    record Summary(String id, String object, String sessionId, String kind, String model, String adapterVersion, int at,
                   String accepted, String correction, String rejected, String continuation, List<String> tags, boolean excluded,
                   long createdAt) {}

    /** The summary's fields, then the request, the token arrays and the fork's log-probs. */
    record Detail(String id, String object, String sessionId, String kind, String model, String adapterVersion, int at,
                  String accepted, String correction, String rejected, String continuation, List<String> tags, boolean excluded,
                  long createdAt, JsonElement request, int[] promptTokens, int[] acceptedTokens, int[] rejectedTokens,
                  int[] correctionTokens, int[] continuationTokens, List<SteerRecord.TokenLogprob> forkTopLogprobs, long updatedAt) {}

    record Page(String object, List<Summary> data) {}

    record Deleted(String id, String object, boolean deleted) {}

    static Summary summary(SteerRecord r) {
        return new Summary(r.id(), "steer", r.sessionId(), r.kind(), r.model(), r.adapterVersion(), r.at(), r.acceptedText(),
                r.correctionText(), r.rejectedText(), r.continuationText(), sortedTags(r), r.excluded(), r.createdAt());
    }

    static Detail detail(SteerRecord r) {
        return new Detail(r.id(), "steer", r.sessionId(), r.kind(), r.model(), r.adapterVersion(), r.at(), r.acceptedText(),
                r.correctionText(), r.rejectedText(), r.continuationText(), sortedTags(r), r.excluded(), r.createdAt(),
                JsonParser.parseString(r.requestJson()), r.promptTokens(), r.acceptedTokens(), r.rejectedTokens(), r.correctionTokens(),
                r.continuationTokens(), r.forkTopLogprobs() == null ? List.of() : r.forkTopLogprobs(), r.updatedAt());
    }

    private static List<String> sortedTags(SteerRecord r) {
        return r.tags().stream().sorted().toList();
    }
}
