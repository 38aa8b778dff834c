#!/usr/bin/env bash
# Apache Kafka 4.x (broker + Java client) jars from Maven Central into .tools/kafka/libs,
# resolved by Maven from scripts/kafka/pom.xml. Idempotent: skips when the jars are there.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=.tools/kafka/libs
# A JDK (the broker, and javac for the Java client probe) and Maven (to fetch the jars).
missing=()
command -v javac >/dev/null || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "[setup] missing Debian packages (${missing[*]}) for Kafka; run this as root" >&2; exit 1
  fi
  echo "[setup] installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
fi
VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' scripts/kafka/pom.xml)
# Kafka 4.x logs through slf4j 1.7, so the log4j binding is log4j-slf4j-impl (the slf4j2
# binding would leave the broker silent).
rm -f "$DEST"/log4j-slf4j2-impl-*.jar
if [ -f "$DEST/kafka_2.13-$VERSION.jar" ] && [ -f "$DEST/kafka-clients-$VERSION.jar" ] && ls "$DEST"/log4j-slf4j-impl-*.jar >/dev/null 2>&1; then
  exit 0
fi
echo "[setup] fetching Kafka $VERSION jars from Maven Central"
mkdir -p "$DEST"
mvn -q -B -f scripts/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory="$(pwd)/$DEST" -DincludeScope=runtime
