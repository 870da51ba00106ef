"""cocotb testbenches and their pytest runners (the Verilog backend issue)."""
