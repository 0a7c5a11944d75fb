import ConsignmentCLI

await consignmentCLIMain()
