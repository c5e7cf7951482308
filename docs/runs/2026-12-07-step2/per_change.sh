set -u
for tree in /tmp/tree_before /tmp/tree_1ec15e8 /tmp/tree_d328a66 /tmp/tree_8e55948 /tmp/tree_581483d; do
  python3 /tmp/time_step_diag.py $tree jax 8 100
  python3 /tmp/time_step_diag.py $tree tensorflow 8 100
done
