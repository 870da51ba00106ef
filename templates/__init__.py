"""The jinja2 templates of the C and Verilog backends (package data of ``lgn.templates``)."""
