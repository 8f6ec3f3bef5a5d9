-- Which prompts a version serves when clients ask for the model by its plain name (dev.steer.adapters.Scope, JSON:
-- the steered and unsteered prompts' tokens and the margin); null: every prompt, as every version before this did.
ALTER TABLE adapters ADD COLUMN scope TEXT;
