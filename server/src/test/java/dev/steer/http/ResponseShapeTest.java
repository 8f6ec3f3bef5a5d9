package dev.steer.http;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.steer.engine.FinishReason;
import dev.steer.engine.Usage;
import dev.steer.json.Json;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The OpenAI shapes, byte for byte as the hand-built JSON wrote them before they became records (field names, order,
 * explicit nulls, left-out fields); log-prob shapes are covered over HTTP (HttpApiTest, OpenAiClientTest).
 */
class ResponseShapeTest {
    private static String write(ResponseShape shape, Object o) {
        return Json.write(o).replace("\"created\":" + shape.created + ",", "\"created\":0,");
    }

    @Test
    void chatChunksAndTheWholeResponse() {
        ResponseShape.Chat c = new ResponseShape.Chat("chatcmpl-1", "tiny", null);
        String head = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"tiny\",\"system_fingerprint\":\"steer\",";
        assertEquals(head + "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]}",
                write(c, c.chunk("", List.of(), null, true)));
        assertEquals(head + "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"logprobs\":null,\"finish_reason\":null}]}",
                write(c, c.chunk("hi", List.of(), null, false)));
        assertEquals(head + "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"length\"}]}",
                write(c, c.chunk("", List.of(), FinishReason.LENGTH, false)));
        assertEquals(head + "\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8,"
                + "\"prompt_tokens_details\":{\"cached_tokens\":2}}}", write(c, c.usageChunk(new Usage(5, 2, 3))));
        assertEquals("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"tiny\",\"system_fingerprint\":\"steer\","
                + "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"a <b>\",\"refusal\":null},\"logprobs\":null,"
                + "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8,"
                + "\"prompt_tokens_details\":{\"cached_tokens\":0}}}", write(c, c.complete("a <b>", List.of(), FinishReason.STOP, new Usage(5, 0, 3))));
    }

    @Test
    void textCompletionChunksAndTheWholeResponse() {
        ResponseShape.Text t = new ResponseShape.Text("cmpl-1", "tiny", null);
        String head = "{\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":0,\"model\":\"tiny\",\"system_fingerprint\":\"steer\",";
        assertEquals(head + "\"choices\":[{\"text\":\"hi\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}",
                write(t, t.chunk("hi", List.of(), null, false)));
        assertEquals(head + "\"choices\":[{\"text\":\"\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}]}",
                write(t, t.chunk("ignored", List.of(), FinishReason.STOP, false)));
        assertEquals(head + "\"choices\":[{\"text\":\"all\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,"
                + "\"completion_tokens\":2,\"total_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":0}}}",
                write(t, t.complete("all", List.of(), FinishReason.LENGTH, new Usage(1, 0, 2))));
    }

    @Test
    void anErrorHasEveryFieldEvenNull() {
        assertEquals("{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\",\"param\":\"at\",\"code\":null}}",
                Json.write(ApiError.invalid("at", "bad").body()));
        assertEquals("{\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":null}}",
                Json.write(ApiError.internal("boom").body()));
    }
}
