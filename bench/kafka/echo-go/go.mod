module l7mesh/bench/kafka/echo-go

go 1.26
