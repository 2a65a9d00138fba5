#!/usr/bin/env bash
# Installs the Kafka broker's jars (KRaft, no ZooKeeper) from Maven Central into a cache outside
# the repository, once. Prints the lib directory on stdout. Idempotent.
set -euo pipefail
KAFKA_VERSION="${AGATE_KAFKA_VERSION:-4.4.0}"
LOG4J_VERSION="${AGATE_LOG4J_VERSION:-2.26.1}"
CACHE="${AGATE_CACHE:-$HOME/.cache/agate}/kafka-$KAFKA_VERSION"
LIB="$CACHE/lib"

if [ -f "$LIB/.complete" ]; then echo "$LIB"; exit 0; fi
command -v mvn >/dev/null || { echo "install-kafka: ERROR: mvn (Maven) is required" >&2; exit 1; }
command -v java >/dev/null || { echo "install-kafka: ERROR: java (17+) is required" >&2; exit 1; }

mkdir -p "$CACHE"
cat > "$CACHE/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.agate.harness</groupId>
  <artifactId>kafka-broker</artifactId>
  <version>1</version>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$KAFKA_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>$LOG4J_VERSION</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>$LOG4J_VERSION</version></dependency>
  </dependencies>
</project>
POM
echo "install-kafka: fetching Kafka $KAFKA_VERSION jars into $LIB" >&2
if ! mvn -q -B -f "$CACHE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB" -DincludeScope=runtime >&2; then
  echo "install-kafka: ERROR: Maven could not fetch org.apache.kafka:kafka_2.13:$KAFKA_VERSION" >&2
  exit 1
fi
touch "$LIB/.complete"
echo "$LIB"
