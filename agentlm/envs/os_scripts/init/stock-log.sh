#!/bin/bash
# Our stand-in for the os_interaction stock-log set-up: a deterministic trade log in /usr/stock.log,
# one trade per line: "<trader> | <Buy|Sell> | <stock index> | <count>".
RANDOM=20231123
names=(Alice Bob Carol Dave Erin Frank)
actions=(Buy Sell)
: > /usr/stock.log
for i in $(seq 1 400); do
  echo "${names[RANDOM % 6]} | ${actions[RANDOM % 2]} | $((RANDOM % 50 + 1)) | $((RANDOM % 1000 + 1))" >> /usr/stock.log
done
