package dev.steer.console;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import dev.steer.llama.LlamaModel;
import dev.steer.testing.TestModels;
import dev.steer.testing.TestServer;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.openqa.selenium.By;
import org.openqa.selenium.Dimension;
import org.openqa.selenium.JavascriptExecutor;
import org.openqa.selenium.Keys;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.StaleElementReferenceException;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.logging.LogEntry;
import org.openqa.selenium.logging.LogType;
import org.openqa.selenium.support.ui.ExpectedConditions;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * The console in a real browser (Debian's chromium, headless, through chromedriver), against a live server: what a
 * person does, click by click. The tiny model checks the whole loop; SmolLM2 (when fetched) takes the screenshots
 * that docs/console.md shows. Every wait is bounded; the browser's console must stay free of errors.
 */
@Timeout(600)
class ConsoleBrowserTest {
    static final String CORRECTION = "the steer is in";
    static final Duration WAIT = Duration.ofSeconds(90);
    static final Duration JOB_WAIT = Duration.ofSeconds(400);  // a job on SmolLM2: references, steps and the gate
    static final Path SHOTS = Path.of("target", "console-screenshots");

    static ChromeDriver browser() {
        String chromium = System.getenv().getOrDefault("STEER_CHROMIUM", "/usr/bin/chromium");
        String driver = System.getenv().getOrDefault("STEER_CHROMEDRIVER", "/usr/bin/chromedriver");
        assertTrue(new File(chromium).canExecute() && new File(driver).canExecute(),
                "the browser tests need Debian's chromium and chromium-driver (.ci/run installs them: apt-get install chromium chromium-driver)");
        ChromeOptions o = new ChromeOptions();
        o.setBinary(chromium);
        o.addArguments("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,800");
        o.setCapability("goog:loggingPrefs", Map.of(LogType.BROWSER, "ALL"));
        return new ChromeDriver(new ChromeDriverService.Builder().usingDriverExecutable(new File(driver)).build(), o);
    }

    static JsonObject json(String body) {
        return JsonParser.parseString(body).getAsJsonObject();
    }

    /** The steers the server has stored. */
    static JsonArray steers(TestServer s) throws Exception {
        return json(s.get("/v1/steers?include_excluded=true").body()).getAsJsonArray("data");
    }

    /** The stored steer with this correction. */
    static JsonObject steerWith(TestServer s, String correction) throws Exception {
        for (var e : steers(s)) {
            if (e.getAsJsonObject().get("correction").getAsString().equals(correction)) {
                return e.getAsJsonObject();
            }
        }
        throw new AssertionError("no steer with correction '" + correction + "': " + steers(s));
    }

    /** A streamed answer steered at its start through the API, tagged: material for a job. */
    static void apiSteer(TestServer s, String prompt, String tag) throws Exception {
        String body = s.post("/v1/chat/completions", "{\"stream\":true,\"temperature\":0,\"ignore_eos\":true,\"max_tokens\":6,"
                + "\"messages\":[{\"role\":\"user\",\"content\":\"" + prompt + "\"}]}").body();
        String first = body.lines().filter(l -> l.startsWith("data: {")).findFirst().orElseThrow();
        String id = json(first.substring(6)).get("id").getAsString();
        String cont = s.post("/v1/chat/completions/" + id + "/steer", "{\"at\":0,\"text\":\"" + CORRECTION + "\",\"max_tokens\":2}").body();
        String steerId = cont.lines().filter(l -> l.contains("\"steer\":{")).map(l -> json(l.substring(6)).getAsJsonObject("steer").get("id").getAsString())
                .findFirst().orElseThrow(() -> new AssertionError(cont));
        assertEquals(200, s.post("/v1/steers/" + steerId + "/tags", "{\"tags\":[\"" + tag + "\"]}").statusCode());
    }

    final List<String> consoleErrors = new ArrayList<>();

    /** Collects the browser console's errors so far (reading the log empties it). */
    void collectErrors(ChromeDriver b) {
        for (LogEntry e : b.manage().logs().get(LogType.BROWSER)) {
            if (e.getLevel().intValue() >= Level.SEVERE.intValue()) {
                consoleErrors.add(e.getMessage());
            }
        }
    }

    /** A bounded wait that looks again when the page replaced an element it was reading (a list re-rendered). */
    static WebDriverWait waiting(ChromeDriver b) {
        return waiting(b, WAIT);
    }

    static WebDriverWait waiting(ChromeDriver b, Duration limit) {
        WebDriverWait w = new WebDriverWait(b, limit);
        w.ignoring(StaleElementReferenceException.class);
        return w;
    }

    static WebElement visible(ChromeDriver b, String css) {
        return waiting(b).until(ExpectedConditions.visibilityOfElementLocated(By.cssSelector(css)));
    }

    static void waitText(ChromeDriver b, String css, String startsWith) {
        waitText(b, css, startsWith, WAIT);
    }

    static void waitText(ChromeDriver b, String css, String startsWith, Duration limit) {
        waiting(b, limit).until(d -> {
            List<WebElement> found = d.findElements(By.cssSelector(css));
            return !found.isEmpty() && found.get(0).getText().startsWith(startsWith);
        });
    }

    /** Asks in the Steer view and waits for the streamed answer to finish. */
    static void ask(ChromeDriver b, String user, int maxTokens) {
        send(b, user, maxTokens);
        waitText(b, "#answer-status", "finished");
    }

    /** Asks in the Steer view; the answer streams on. */
    static void send(ChromeDriver b, String user, int maxTokens) {
        b.get(b.getCurrentUrl().replaceAll("#.*", "") + "#steer");
        waiting(b).until(d -> !d.findElements(By.cssSelector("#model option")).isEmpty());
        WebElement u = b.findElement(By.id("user"));
        u.clear();
        u.sendKeys(user);
        WebElement max = b.findElement(By.id("max-tokens"));
        max.clear();
        max.sendKeys(String.valueOf(maxTokens));
        b.findElement(By.id("send")).click();
    }

    /**
     * Clicks the model's visible token number {@code index} (a token holding part of a UTF-8 character shows nothing
     * until the next completes it), types the correction and presses Enter; waits for the continuation. Returns the
     * token's {@code at}: the output tokens kept.
     */
    static int steerAt(ChromeDriver b, int index, String correction) {
        List<WebElement> tokens = b.findElements(By.cssSelector("#answer .tok.model:not(.removed)")).stream()
                .filter(WebElement::isDisplayed).filter(t -> !t.getText().isBlank()).toList();
        assertTrue(tokens.size() > index, "the answer has " + tokens.size() + " visible tokens");
        WebElement token = tokens.get(index);
        int at = Integer.parseInt(token.getAttribute("data-at"));
        token.click();
        visible(b, "#answer .editor input").sendKeys(correction, Keys.ENTER);
        visible(b, "#answer .tok.inserted");
        waitText(b, "#answer-status", "finished");
        return at;
    }

    static String removedText(ChromeDriver b) {
        return (String) ((JavascriptExecutor) b).executeScript(
                "return [...document.querySelectorAll('#answer .tok.removed')].map(e => e.textContent).join('')");
    }

    /** The page is no wider than the window: nothing needs sideways scrolling. */
    static void assertFits(ChromeDriver b, String view) {
        Number scroll = (Number) ((JavascriptExecutor) b).executeScript("return document.documentElement.scrollWidth");
        Number width = (Number) ((JavascriptExecutor) b).executeScript("return window.innerWidth");
        assertTrue(scroll.intValue() <= width.intValue(), view + " is " + scroll + " px wide in a " + width + " px window");
    }

    static void screenshot(ChromeDriver b, String name) throws IOException {
        Files.createDirectories(SHOTS);
        Files.write(SHOTS.resolve(name + ".png"), b.getScreenshotAs(OutputType.BYTES));
    }

    @Test
    void aPersonStreamsSteersTagsExcludesTrainsActivatesAndRollsBack() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, null)) {
            ChromeDriver b = browser();
            try {
                b.get(s.base() + "/");
                assertEquals("Steer console", b.getTitle());

                // Stream an answer, click its fourth token, type a correction: the continuation follows it in the same answer.
                ask(b, "hello world", 12);
                List<WebElement> tokens = b.findElements(By.cssSelector("#answer .tok.model"));
                assertTrue(tokens.size() >= 8, "tokens: " + tokens.size());
                int at = steerAt(b, 3, CORRECTION);
                WebElement inserted = b.findElement(By.cssSelector("#answer .tok.inserted"));
                assertEquals(CORRECTION, inserted.getText());
                Boolean continued = (Boolean) ((JavascriptExecutor) b).executeScript(
                        "const n = arguments[0].nextElementSibling; return !!n && n.classList.contains('model') && !n.classList.contains('removed')", inserted);
                assertTrue(continued, "the continuation streams right after the correction");
                String removed = removedText(b);
                assertFalse(removed.isEmpty(), "the cut text is shown struck through");

                // The record: what the person saw struck through is what was stored as rejected.
                JsonArray stored = steers(s);
                assertEquals(1, stored.size(), stored.toString());
                JsonObject record = stored.get(0).getAsJsonObject();
                assertEquals(CORRECTION, record.get("correction").getAsString());
                assertEquals(at, record.get("at").getAsInt(), "the answer was cut before the clicked token");
                String id = record.get("id").getAsString();

                // Records: find it, tag it, exclude it.
                b.findElement(By.id("tab-records")).click();
                WebElement card = visible(b, "article.record[data-id='" + id + "']");
                assertEquals(CORRECTION, card.findElement(By.cssSelector(".correction")).getText());
                assertEquals(record.get("rejected").getAsString(), card.findElement(By.cssSelector(".rejected")).getAttribute("textContent"));
                card.findElement(By.cssSelector("input")).sendKeys("ui");
                card.findElement(By.xpath(".//button[text()='Add tag']")).click();
                waiting(b).until(d -> d.findElement(By.cssSelector("article.record[data-id='" + id + "']")).getText().contains("ui"));
                b.findElement(By.cssSelector("article.record[data-id='" + id + "']")).findElement(By.xpath(".//button[text()='Exclude']")).click();
                visible(b, "article.record.excluded[data-id='" + id + "']");
                JsonObject after = json(s.get("/v1/steers/" + id).body());
                assertTrue(after.get("excluded").getAsBoolean());
                assertTrue(after.getAsJsonArray("tags").toString().contains("\"ui\""), after.toString());
                assertFits(b, "records");

                // Learn: more steers through the API, a job from the page, its loss plot, the adapter activated and rolled back.
                for (String p : List.of("hello world", "tell me a story", "what is the time", "hello world", "tell me a story")) {
                    apiSteer(s, p, "learn");
                }
                b.findElement(By.id("tab-learn")).click();
                visible(b, "#job-tag").sendKeys("learn");
                b.findElement(By.cssSelector("#job-form summary")).click();
                visible(b, "#job-epochs").sendKeys("4");
                b.findElement(By.id("job-activate")).click();  // activate by hand below
                b.findElement(By.id("job-start")).click();
                visible(b, "#job");
                waitText(b, "#job-status", "succeeded");
                int points = b.findElements(By.cssSelector("#loss-plot circle.point")).size();
                JsonObject job = json(s.get("/v1/fine_tuning/jobs").body()).getAsJsonArray("data").get(0).getAsJsonObject();
                assertEquals("succeeded", job.get("status").getAsString(), job.toString());
                assertEquals(job.get("step").getAsInt(), points, "one point per optimizer step it ran (early stopping may end it before total_steps)");
                String version = job.get("adapter_version").getAsString();
                visible(b, "#job-report table");

                WebElement row = visible(b, "#adapters tr[data-version='" + version + "']");
                row.findElement(By.xpath(".//button[text()='Activate']")).click();
                visible(b, "#adapters tr.active[data-version='" + version + "']");
                waitText(b, "#serving", "serving: " + version);
                assertEquals(version, json(s.get("/v1/adapters").body()).get("active").getAsString());
                b.findElement(By.id("rollback")).click();
                waitText(b, "#serving", "serving: base model");
                assertTrue(json(s.get("/v1/adapters").body()).get("active").isJsonNull());
                assertFits(b, "learn");

                // A phone-width window: every view still fits.
                b.manage().window().setSize(new Dimension(390, 844));
                for (String view : List.of("steer", "records", "learn")) {
                    b.findElement(By.id("tab-" + view)).click();
                    visible(b, "#view-" + view);
                    assertFits(b, view + " (narrow)");
                }
                assertFalse(b.findElement(By.id("error")).isDisplayed(), "the page showed an error: " + b.findElement(By.id("error")).getText());
                collectErrors(b);
            } finally {
                b.quit();
            }
            assertEquals(List.of(), consoleErrors, "the browser console logged errors");
        }
    }

    @Test
    void aKeyProtectedServerAsksForTheKeyAndTheKeyboardAloneSteers() throws Exception {
        try (TestServer s = new TestServer(TestModels.tinyLlama(), "tiny", 2, "sekrit")) {
            ChromeDriver b = browser();
            try {
                b.get(s.base() + "/");
                visible(b, "#key-input").sendKeys("sekrit", Keys.ENTER);
                waiting(b).until(d -> !d.findElements(By.cssSelector("#model option")).isEmpty());
                ask(b, "tell me a story", 10);
                // Tab into the answer, arrows to the third token, Enter opens the box, Enter steers.
                WebElement answer = b.findElement(By.id("answer"));
                ((JavascriptExecutor) b).executeScript("arguments[0].focus()", answer);
                answer.sendKeys(Keys.ARROW_RIGHT);
                b.switchTo().activeElement().sendKeys(Keys.ARROW_RIGHT);
                b.switchTo().activeElement().sendKeys(Keys.ARROW_RIGHT);
                WebElement third = b.switchTo().activeElement();
                int at = Integer.parseInt(third.getAttribute("data-at"));
                third.sendKeys(Keys.ENTER);
                visible(b, "#answer .editor input").sendKeys(CORRECTION, Keys.ENTER);
                visible(b, "#answer .tok.inserted");
                waitText(b, "#answer-status", "finished");
                JsonArray stored = json(s.get("/v1/steers", "sekrit").body()).getAsJsonArray("data");
                assertEquals(1, stored.size());
                // Cut before the third element: the tokens before it kept, the rest rejected.
                assertEquals(at, stored.get(0).getAsJsonObject().get("at").getAsInt(), stored.toString());
                assertEquals(third, b.findElements(By.cssSelector("#answer .tok")).get(2), "the arrows moved to the third element");
                assertFalse(b.findElement(By.id("error")).isDisplayed(), "the page showed an error: " + b.findElement(By.id("error")).getText());
                collectErrors(b);
            } finally {
                b.quit();
            }
            // The first calls' 401s (before the key was given) are the only errors the browser may show.
            consoleErrors.removeIf(m -> m.contains("401"));
            assertEquals(List.of(), consoleErrors, "the browser console logged errors");
        }
    }

    /** The screenshots of docs/console.md, on the real default model: a real answer, a steer, the records, a short job. */
    @Test
    @Timeout(1200)
    void screenshotsOnSmolLm2() throws Exception {
        Path smol = TestModels.smolLm2OrNull();
        Assumptions.assumeTrue(smol != null, "SmolLM2-135M-Instruct not available: run `bash models/fetch-smollm2.sh` (test.sh does)");
        try (LlamaModel m = LlamaModel.load(smol, new LlamaModel.Params(TestModels.params().gpuLayers(), true, false));
             TestServer s = new TestServer(m, "smol-sha", "smol", 2, null, Files.createTempDirectory("steer-console-smol"))) {
            ChromeDriver b = browser();
            try {
                b.get(s.base() + "/");
                // A steer while the answer streams: the same stream goes on after the correction.
                send(b, "Write a long story about a dragon who learns to bake bread.", 400);
                waiting(b).until(d -> d.findElements(By.cssSelector("#answer .tok.model")).size() >= 12);
                WebElement live = b.findElements(By.cssSelector("#answer .tok.model")).get(8);
                int liveAt = Integer.parseInt(live.getAttribute("data-at"));
                live.click();
                WebElement box = visible(b, "#answer .editor input");
                box.sendKeys(" Her name was Crumb.");
                assertTrue(b.findElement(By.id("answer-status")).getText().startsWith("streaming"), "still streaming when the steer is sent");
                box.sendKeys(Keys.ENTER);
                visible(b, "#answer .tok.inserted");
                waitText(b, "#answer-status", "finished", JOB_WAIT);
                assertEquals("live", b.findElement(By.id("answer")).getAttribute("data-last-steer"), "applied to the running stream, not as a continuation");
                JsonObject liveRecord = steerWith(s, " Her name was Crumb.");
                assertEquals(liveAt, liveRecord.get("at").getAsInt());
                assertEquals(" Her name was Crumb.", liveRecord.get("correction").getAsString());
                assertEquals(liveRecord.get("rejected").getAsString(), removedText(b), "what is struck through is what was rejected");
                assertTrue(b.findElements(By.cssSelector("#answer .tok.inserted ~ .tok.model:not(.removed)")).size() > 3,
                        "the answer went on after the correction");
                screenshot(b, "steer-live");

                ask(b, "What is the capital of France? Answer in two sentences.", 48);
                List<WebElement> tokens = b.findElements(By.cssSelector("#answer .tok.model"));
                assertTrue(tokens.size() > 6, "tokens: " + tokens.size());
                int at = steerAt(b, 4, " In plain words:");
                JsonObject record = steerWith(s, " In plain words:");
                assertEquals(at, record.get("at").getAsInt());
                assertEquals(record.get("rejected").getAsString(), removedText(b), "what is struck through is what was rejected");
                // The box open on a token, showing the alternatives, for the picture.
                List<WebElement> after = b.findElements(By.cssSelector("#answer .tok.model:not(.removed)"));
                after.get(after.size() - 3).click();
                visible(b, "#answer .editor .alt");
                screenshot(b, "steer");
                b.findElement(By.cssSelector("#answer .editor input")).sendKeys(Keys.ESCAPE);

                b.findElement(By.id("tab-records")).click();
                visible(b, "article.record .correction");
                screenshot(b, "records");

                b.findElement(By.id("tab-learn")).click();
                b.findElement(By.cssSelector("#job-form summary")).click();
                visible(b, "#job-epochs").sendKeys("1");
                b.findElement(By.id("job-activate")).click();
                b.findElement(By.id("job-start")).click();
                waitText(b, "#job-status", "succeeded", JOB_WAIT);
                assertFalse(b.findElements(By.cssSelector("#loss-plot circle.point")).isEmpty());
                screenshot(b, "learn");

                b.manage().window().setSize(new Dimension(390, 844));
                b.findElement(By.id("tab-steer")).click();
                assertFits(b, "steer (narrow, SmolLM2)");
                screenshot(b, "steer-narrow");
                assertFalse(b.findElement(By.id("error")).isDisplayed(), "the page showed an error: " + b.findElement(By.id("error")).getText());
                collectErrors(b);
            } finally {
                b.quit();
            }
            assertEquals(List.of(), consoleErrors, "the browser console logged errors");
        }
    }
}
