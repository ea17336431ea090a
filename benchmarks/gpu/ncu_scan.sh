# Hardware counters of the scan kernels (Nsight Compute; the nvidia-h200 kind runs on Firecracker, where
# ncu reads them). Writes $OUT/ncu_scan.txt (details page) and the report. Usage: bash benchmarks/gpu/ncu_scan.sh
source benchmarks/gpu/setup.sh
timeout 300 ncu --clock-control none --kernel-name regex:_scan_ --launch-count 4 --set full --import-source yes \
  -f -o $OUT/ncu_scan python3 benchmarks/gpu/scan_once.py 64x196 8x16384 > $OUT/ncu_scan.log 2>&1
echo "ncu rc=$?" >> $OUT/ncu_scan.log; tail -4 $OUT/ncu_scan.log
ncu -i $OUT/ncu_scan.ncu-rep --page details > $OUT/ncu_scan.txt 2>&1
metrics="_scan_|Duration|Compute \(SM\) Throughput|Memory Throughput|Registers Per|Achieved Occupancy"
metrics+="|Theoretical Occupancy|Executed Ipc A|Issue Slots Busy|Block Limit Reg"
grep -E "$metrics" $OUT/ncu_scan.txt
ncu -i $OUT/ncu_scan.ncu-rep --page source --csv --print-source sass > $OUT/ncu_scan_sass.csv 2>/dev/null
ncu -i $OUT/ncu_scan.ncu-rep --page raw --csv > $OUT/ncu_scan_raw.csv 2>/dev/null
ls -la $OUT
