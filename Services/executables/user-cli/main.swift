import UserCLI

await userCLIMain()
