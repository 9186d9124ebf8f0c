# GFLOP/s per GEMM case and implementation, from `bench --gemm --csv gemm.csv`.
# Usage: gnuplot -e "csv='gemm.csv'; out='gflops.png'; threads=1" plots/gflops.gp
set datafile separator ","
set datafile commentschars "#"
set datafile columnheaders
if (!exists("threads")) threads = 1
set terminal pngcairo size 1600,900 enhanced font "DejaVu Sans,12"
set output out
set title sprintf("GEMM throughput on the MLP's shapes, %d thread(s)  (higher is better)", threads)
set ylabel "GFLOP/s"
set yrange [0:*]
set grid ytics lc rgb "#dddddd"
set style fill solid 0.8 border -1
set boxwidth 0.13
set key outside right top
set xlabel "case: op m x n x k"
set xtics rotate by -40 left font ",10" noenhanced
isas = "avx512 avx2 sse2 scalar openblas blis"
# The shapes as x labels, one per case: set xtics ("nn 32x50x784" 1, ...), made by awk
# from the CSV (a labelled invisible plot would add a tic for every filtered-out row).
tics = system("grep -v '^#' '".csv."' | awk -F, -v t=".threads." 'NR > 1 && $8 == t && !seen[$1]++ { printf \"%s\\\"%s %sx%sx%s\\\" %s\", (n++ ? \",\" : \"\"), $2, $3, $4, $5, $1 }'")
eval "set xtics (".tics.")"
plot for [i=1:words(isas)] csv using \
        ((strcol("isa") eq word(isas, i) && column("threads") == threads) ? column("case") + (i - 3.5) * 0.14 : 1/0):(column("gflops")) \
        with boxes lc i title word(isas, i)
