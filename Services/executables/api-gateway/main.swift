import APIGateway

await apiGatewayMain()
