package dev.steer.engine;

import java.util.List;

/**
 * Finds stop strings in streamed text, also when one spans several tokens. Text that might be the start of a stop
 * string is held back until it is clear either way, so a client never sees part of a stop string.
 */
final class StopMatcher {
    private final List<String> stops;
    private final StringBuilder held = new StringBuilder();
    private boolean stopped;

    StopMatcher(List<String> stops) {
        this.stops = stops.stream().filter(s -> !s.isEmpty()).toList();
    }

    /** Appends new text; returns the text that is now safe to emit. After a stop, {@link #stopped()} is true. */
    String append(String text) {
        if (stopped) {
            return "";
        }
        held.append(text);
        int first = -1;
        for (String s : stops) {
            int at = held.indexOf(s);
            if (at >= 0 && (first < 0 || at < first)) {
                first = at;
            }
        }
        if (first >= 0) {
            stopped = true;
            String out = held.substring(0, first);
            held.setLength(0);
            return out;
        }
        int keep = 0;  // longest suffix of the held text that is a proper prefix of some stop string
        String h = held.toString();
        for (String s : stops) {
            for (int n = Math.min(s.length() - 1, h.length()); n > keep; n--) {
                if (h.regionMatches(h.length() - n, s, 0, n)) {
                    keep = n;
                    break;
                }
            }
        }
        String out = held.substring(0, held.length() - keep);
        held.delete(0, held.length() - keep);
        return out;
    }

    /** At the end of the generation: whatever was held back is not a stop string after all. */
    String flush() {
        String out = stopped ? "" : held.toString();
        held.setLength(0);
        return out;
    }

    boolean stopped() {
        return stopped;
    }
}
