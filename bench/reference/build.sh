#!/usr/bin/env bash
# Builds the Kafka Streams reference project and writes target/classpath.txt.
# Idempotent: does nothing when target/classes and target/classpath.txt are newer than pom.xml and src/.
# Run with:  java -cp "target/classes:$(cat target/classpath.txt)" dev.streamtable.reference.<Main>
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

stamp=target/.build-stamp
if [[ -f "$stamp" && -d target/classes && -s target/classpath.txt ]] \
    && [[ -z "$(find pom.xml src build.sh -newer "$stamp" -print -quit)" ]]; then
  exit 0
fi

mkdir -p target
# (Debian's mvn prints bare colour-reset sequences even with -q -B; strip them. All output -> stderr.)
if ! mvn -q -B -Dstyle.color=never -DskipTests package dependency:build-classpath \
    -Dmdep.outputFile="$PWD/target/classpath.txt" 2>&1 | sed -e 's/\x1b\[0m//g' -e '/^$/d' >&2; then
  echo "build.sh: mvn failed" >&2
  exit 1
fi
[[ -s target/classpath.txt ]] || { echo "build.sh: target/classpath.txt not written" >&2; exit 1; }
touch "$stamp"
