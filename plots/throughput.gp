# Training throughput (samples/s, training passes only) per run, from summary.csv; with
# --repeat the median, and the error bar its bootstrap 95% interval.
# bench --sweep sets: sweep, summary, labels, nruns, outdir.
set datafile separator ","
set datafile commentschars "#"
set datafile columnheaders
set datafile missing "nan"
L = system("cat '".labels."'")
set terminal pngcairo size 1400,900 enhanced font "DejaVu Sans,13"
set output outdir."/throughput.png"
set title "scratchnet: training throughput per run (training passes only)"
set ylabel "samples per second"
set format y "%.1s%c"
# Headroom above the tallest bar for its label.
stats summary using (strcol("status") eq "ok" ? column("samples_per_s_ci_hi") : 1/0) nooutput
set yrange [0:(exists("STATS_max") && STATS_max > 0 ? STATS_max * 1.1 : 1)]
set grid ytics lc rgb "#dddddd"
set style fill solid 0.7 border -1
set boxwidth 0.6
set xtics rotate by -25 left
unset key
set xrange [0.3:nruns + 0.7]
# Only runs that learned: a diverged or collapsed run's speed is not a result.
ok(s) = strcol("status") eq "ok" ? s : 1/0
plot summary using (column("run")):(ok(column("samples_per_s"))):(column("run")):xtic(word(L, int(column("run")))) \
        with boxes lc variable, \
     summary using (column("run")):(ok(column("samples_per_s"))):(column("samples_per_s_ci_lo")):(column("samples_per_s_ci_hi")) \
        with yerrorbars lc rgb "#333333" pt -1 notitle, \
     summary using (column("run")):(ok(column("samples_per_s"))):(sprintf("%.0fk", column("samples_per_s") / 1000)) \
        with labels offset 0,1 notitle
