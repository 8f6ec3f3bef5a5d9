package dev.steer.json;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * A record component that {@link Json} leaves out when it is null, instead of writing {@code "name": null}: for
 * fields OpenAI's shapes leave out when they have no value (a chunk's {@code delta.role}), and for optional fields
 * whose absence clients already rely on.
 */
@Retention(RetentionPolicy.RUNTIME)
@Target(ElementType.RECORD_COMPONENT)
public @interface OmitWhenNull {}
