import Compiler
print("balancer")
