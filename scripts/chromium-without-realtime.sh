#!/bin/sh
# Starts Debian's Chromium without CAP_SYS_NICE (the test helpers use it when running as root).
#
# As root, Chromium gives its audio threads real-time priority (SCHED_RR) and its IO threads
# nice -8, which an ordinary user's browser does not get without rtkit's limits. With five to
# eight pages on two cores, the real-time audio threads of every page preempt everything else
# (signaling sockets miss their pings, answers to SDP take seconds: bench/notes/migration.md).
# Dropping the capability from the bounding set leaves Chromium at normal priority, like a
# user's browser.
exec setpriv --bounding-set -sys_nice --inh-caps -sys_nice "${CHROMIUM_BIN:-/usr/bin/chromium}" "$@"
