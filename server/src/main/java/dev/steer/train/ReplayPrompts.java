package dev.steer.train;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import dev.steer.llama.ChatTemplates;
import dev.steer.llama.LlamaModel;
import java.util.ArrayList;
import java.util.List;

/**
 * A built-in, varied set of ordinary requests that no steer is about: the base model's own answers to them are what
 * a job keeps unchanged (the replay set, trained under the KL term), and a held-out part of them are the gate's
 * probes (is what nobody taught still answered the same, without loops?). The two parts never overlap.
 */
final class ReplayPrompts {
    /** Trained on: the adapter must keep answering these as the base model does. */
    static final List<String> REPLAY = List.of(
            "What is the capital of France?",
            "Give me three tips for sleeping better.",
            "Translate 'good morning' into Spanish.",
            "What is 12 times 7?",
            "Write a short poem about the sea.",
            "Explain what photosynthesis is.",
            "How do I boil an egg?",
            "Name three primary colors.",
            "What does a CPU do in a computer?",
            "Write a Python function that adds two numbers.",
            "Why is the sky blue?",
            "Suggest a name for a pet cat.",
            "What is the boiling point of water in Celsius?",
            "Summarize the story of Cinderella in two sentences.",
            "How many days are there in a leap year?",
            "What are the benefits of regular exercise?",
            "Hello!",
            "Describe a rainy day in one paragraph.",
            "What is the difference between weather and climate?",
            "List the planets of the solar system.",
            "How do you say 'thank you' in French?",
            "Write a haiku about autumn.",
            "What is a noun?",
            "Give me an idea for a weekend trip.",
            "Write a two-line birthday message for my sister.",
            "What is 100 divided by 4?",
            "Which is heavier, a kilogram of feathers or a kilogram of iron?",
            "Rewrite this sentence more politely: give me the report now.",
            "What time zone is London in?",
            "Write a JavaScript function that reverses a string.",
            "Name two instruments in an orchestra.",
            "Good morning!");

    /** Held out: the gate compares the adapter's answers to these with the base model's. */
    static final List<String> PROBES = List.of(
            "What is the largest ocean on Earth?",
            "Write a sentence using the word 'bright'.",
            "What is 15 plus 27?",
            "Translate 'cat' into German.",
            "Explain gravity to a child.",
            "What is the freezing point of water in Fahrenheit?",
            "Recommend a book for a long flight.",
            "How does a rainbow form?",
            "Write a limerick about a dog.",
            "What is the chemical symbol for gold?",
            "Hi, how are you today?",
            "What should I pack for a beach holiday?");

    /** Watched while a job trains ({@link Checkpoints}): neither trained on nor the gate's probes. */
    static final List<String> WATCH = List.of(
            "What is the tallest mountain in the world?",
            "Write a thank-you note to a neighbor.",
            "What is 8 times 9?",
            "Translate 'water' into Italian.",
            "How do airplanes stay in the air?",
            "Give me a recipe idea for dinner tonight.",
            "Who painted the Mona Lisa?",
            "What are three ways to save money?",
            "Tell me a fun fact about octopuses.",
            "What is the past tense of 'run'?",
            "Good evening!",
            "How can I learn to play the guitar?");

    private ReplayPrompts() {}

    /** Each prompt as the chat template renders a one-message conversation, tokenized. */
    static List<int[]> render(LlamaModel model, ChatTemplates templates, List<String> prompts) {
        List<int[]> out = new ArrayList<>();
        for (String p : prompts) {
            JsonArray messages = new JsonArray();
            JsonObject m = new JsonObject();
            m.addProperty("role", "user");
            m.addProperty("content", p);
            messages.add(m);
            out.add(model.tokenize(templates.render(ChatTemplates.Request.of(messages)).prompt(), true, true));
        }
        return out;
    }
}
