#!/usr/bin/env bash
# Apache Kafka 4.x (broker + Java client) jars from Maven Central into .tools/kafka/libs,
# resolved by Maven from scripts/kafka/pom.xml. Idempotent: skips when the jars are there.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=.tools/kafka/libs
VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)
# Kafka 4.x logs through slf4j 1.7, so the log4j binding is log4j-slf4j-impl (the slf4j2
# binding would leave the broker silent).
rm -f "$DEST"/log4j-slf4j2-impl-*.jar
if [ -f "$DEST/kafka_2.13-$VERSION.jar" ] && [ -f "$DEST/kafka-clients-$VERSION.jar" ] && ls "$DEST"/log4j-slf4j-impl-*.jar >/dev/null 2>&1; then
  exit 0
fi
command -v mvn >/dev/null || { echo "[setup] maven (mvn) is required for the Kafka jars" >&2; exit 1; }
command -v java >/dev/null || { echo "[setup] java is required for the Kafka broker" >&2; exit 1; }
echo "[setup] fetching Kafka $VERSION jars from Maven Central"
mkdir -p "$DEST"
mvn -q -B -f scripts/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$(pwd)/$DEST" -DincludeScope=runtime
