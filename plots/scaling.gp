# Thread scaling from a sweep over threads=: each configuration's speed over its
# fewest-thread variant, measured in the same block (median of the per-block ratios, the
# error bar its bootstrap 95% interval), and the parallel efficiency (speedup / thread
# ratio). bench --sweep sets: outdir (scaling.csv is there).
set datafile separator ","
set datafile commentschars "#"
set datafile columnheaders
data = outdir."/scaling.csv"
# The groups (configurations equal but for threads) and their labels, in file order.
G = system("awk -F, '$1 ~ /^[0-9]+$/ && !seen[$1]++ {print $1}' '".data."'")
label(g) = system(sprintf("awk -F, '$1 == %s {print $2; exit}' '%s'", g, data))
stats data using (column("threads")) nooutput
tmin = STATS_min
tmax = STATS_max
set terminal pngcairo size 1400,700 enhanced font "DejaVu Sans,13"
set output outdir."/scaling.png"
set multiplot layout 1,2 title "scratchnet: thread scaling (per-block ratios, median and 95% interval)"
set grid lc rgb "#dddddd"
set xlabel "threads"
set xrange [tmin - 0.5:tmax + 0.5]
set xtics 1
set key top left
set ylabel "speedup over the fewest threads"
set yrange [0:*]
plot x / tmin with lines dt 2 lc rgb "#888888" title "ideal", \
     for [g in G] data using (column("group") == g + 0 ? column("threads") : 1/0):(column("speedup")): \
        (column("speedup_ci_lo")):(column("speedup_ci_hi")) with yerrorlines lw 2 title label(g)
set ylabel "parallel efficiency (%)"
set yrange [0:110]
plot 100 with lines dt 2 lc rgb "#888888" title "ideal", \
     for [g in G] data using (column("group") == g + 0 ? column("threads") : 1/0):(100 * column("efficiency")) \
        with linespoints lw 2 pt 7 title label(g)
unset multiplot
