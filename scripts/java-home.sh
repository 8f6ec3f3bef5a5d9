# Sourced by the build scripts: points JAVA_HOME at a JDK 21 or newer (the server targets Java 21).
# Keeps a suitable JAVA_HOME; otherwise picks the newest JDK under /usr/lib/jvm (Temurin is installed there beside
# the system's Java 17).
java_major() { "$1/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }
if [ -z "${JAVA_HOME:-}" ] || [ ! -x "$JAVA_HOME/bin/javac" ] || [ "$(java_major "$JAVA_HOME")" -lt 21 ]; then
  JAVA_HOME=
  for jdk in /usr/lib/jvm/*/ /opt/java/openjdk/; do
    jdk=${jdk%/}
    if [ -x "$jdk/bin/javac" ] && [ "$(java_major "$jdk")" -ge 21 ] 2>/dev/null; then
      if [ -z "$JAVA_HOME" ] || [ "$(java_major "$jdk")" -gt "$(java_major "$JAVA_HOME")" ]; then
        JAVA_HOME=$jdk
      fi
    fi
  done
  if [ -z "$JAVA_HOME" ]; then
    echo "Steer needs a JDK 21 or newer (none found under /usr/lib/jvm); set JAVA_HOME to one." >&2
    exit 1
  fi
fi
export JAVA_HOME
export PATH="$JAVA_HOME/bin:$PATH"
