"""The small interpreter every benchmark starts its contenders through.

It forks the contender and reports its rusage: Linux carries the pre-exec peak RSS of a forked
process into its ``ru_maxrss``, so forking straight from a (large) bench process would report the
bench's own memory for a small contender. CPU is user + system of the contender and its threads.
"""

LAUNCHER = r"""
import json, os, sys, time
t0 = time.perf_counter()
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"s": time.perf_counter() - t0, "rss_kb": usage.ru_maxrss,
                  "cpu": usage.ru_utime + usage.ru_stime,
                  "rc": os.waitstatus_to_exitcode(status)}), file=sys.stderr)
"""
