#!/usr/bin/env bash
# Keeps changing the demo's inventory database once a second — a new order,
# an order moving from new to paid to shipped, the oldest order deleted every
# third round, a product's price nudged — so the demo has live changes to
# show. Used by scripts/demo and by the docker-compose demo.
#
#   changes.sh postgres psql -h HOST -U USER -d DB     (PGPASSWORD in the env)
#   changes.sh mysql mysql -h HOST -u USER -pPASSWORD
#
# A failed round (the server restarting) is skipped, not fatal.
set -uo pipefail
kind="${1:?usage: changes.sh postgres|mysql CLIENT [ARGS...]}"; shift
[ "$#" -gt 0 ] || { echo "changes.sh: give the client command after the kind" >&2; exit 2; }

i=0
while true; do
  i=$((i + 1))
  case "$kind" in
    postgres) "$@" -X -q -c "
      INSERT INTO inventory.orders (order_date, purchaser, quantity, product_id) VALUES (current_date, 1 + $i % 100, 1 + $i % 5, 1 + $i % 50);
      UPDATE inventory.orders SET status = CASE status WHEN 'new' THEN 'paid' WHEN 'paid' THEN 'shipped' ELSE status END WHERE id = 1 + ($i * 37) % 300;
      DELETE FROM inventory.orders WHERE id = (SELECT min(id) FROM inventory.orders) AND $i % 3 = 0;
      UPDATE inventory.products SET price = price + 0.01 WHERE id = 1 + $i % 50;" >/dev/null 2>&1 ;;
    mysql) "$@" -e "
      INSERT INTO inventory.orders (order_date, purchaser, quantity, product_id) VALUES (CURRENT_DATE, 1 + $i % 100, 1 + $i % 5, 1 + $i % 50);
      UPDATE inventory.orders SET status = IF(status = 'new', 'paid', 'shipped') WHERE id = 1 + ($i * 37) % 300;
      UPDATE inventory.products SET price = price + 0.01 WHERE id = 1 + $i % 50;
      $( [ $((i % 3)) = 0 ] && echo 'DELETE FROM inventory.orders ORDER BY id LIMIT 1;')" >/dev/null 2>&1 ;;
    *) echo "changes.sh: unknown kind '$kind' (postgres or mysql)" >&2; exit 2 ;;
  esac
  sleep 1
done
