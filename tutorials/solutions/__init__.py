"""Reference solutions of the tutorials' exercises, one module per tutorial. Try first!"""
