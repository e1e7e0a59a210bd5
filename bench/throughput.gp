# Throughput vs clients, coherence against the plain-INSERT baseline, from
# DIR/throughput.dat (written by coherence-bench). Run from the repository
# root: gnuplot -e "dir='bench/results/synchronous_commit-on'; commit='on'" bench/throughput.gp
set terminal pngcairo size 800,500 font ",11"
set output dir."/throughput.png"
set title "Append throughput vs clients, synchronous_commit=".commit." (coherence vs plain INSERTs)"
set xlabel "client connections"
set ylabel "events / s"
set logscale x 2
set xtics (1, 8, 32)
set xrange [0.8:40]
set yrange [0:*]
set key top left box opaque
set grid ytics
plot dir."/throughput.dat" using 1:2 with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "coherence, 1 event/call", \
     "" using 1:3 with linespoints lw 2 pt 5 dt 2 lc rgb "#1f77b4" title "baseline, 1 event/call", \
     "" using 1:4 with linespoints lw 2 pt 7 lc rgb "#d62728" title "coherence, 100 events/call", \
     "" using 1:5 with linespoints lw 2 pt 5 dt 2 lc rgb "#d62728" title "baseline, 100 events/call"
