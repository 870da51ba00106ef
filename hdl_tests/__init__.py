"""cocotb simulations of the emitted Verilog, run from pytest (the testbench ships in ``lgn.compiler``)."""
