import ConsignmentService

await consignmentServiceMain()
